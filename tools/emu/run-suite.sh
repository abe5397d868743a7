#!/bin/sh
# Runs the CUDA suite (RUNNER --gpu [FILTER...]) on the emulator three times,
# each under another schedule:
#   forward  threads and blocks in index order, cp.async landing at the wait
#   reverse  everything in reverse order, cp.async landing at once
#   random   a seeded shuffle (BGEMU_SEED, default 1), cp.async at the wait
# BGEMU_JOBS of them at a time (default 2: the emulator uses one core each).
# The tests named in BGEMU_FORWARD_ONLY (substrings, space-separated) run
# under the forward schedule only; at the small size (BG_TEST_SIZE=small) it
# defaults to the model oracles and the gpu_cli_* and gpu_profile_* tests:
# whole-model graphs, whole `budgie` runs and profile searches of ops whose
# kernels the per-op and per-kernel cases already run under every schedule,
# and half of each run's time. A kernel fault the emulator detects makes that run's exit
# status 3 even where the test itself passed. Prints each run's output (all
# but the 'ok' lines) in order, then one closing line adding the runs up:
# "N passed, N failed, N skipped".
set -u
runner=$1
shift
seed=${BGEMU_SEED:-1}
jobs=${BGEMU_JOBS:-2}
if [ "${BG_TEST_SIZE:-}" = small ]; then
    forward_only=${BGEMU_FORWARD_ONLY-model_oracle_cuda gpu_cli_ gpu_profile_}
else
    forward_only=${BGEMU_FORWARD_ONLY-}
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
runs="forward:late reverse:early random:$seed:late"

run_one() { # index, schedule, cp.async completion, then the runner's arguments
    i=$1 sched=$2 cp=$3
    shift 3
    BGEMU_SCHEDULE=$sched BGEMU_CP_ASYNC=$cp BGEMU_FAIL_EXIT=1 "$runner" --gpu "$@" >"$dir/$i.log" 2>&1
    echo $? >"$dir/$i.rc"
}

# Lanes of sequential runs: the forward run (the longest) has a lane of its
# own; the others share the remaining lanes round-robin.
excl=""
for p in $forward_only; do excl="$excl --exclude $p"; done
i=0
for run in $runs; do
    i=$((i + 1))
    if [ "$i" = 1 ] || [ "$jobs" -le 1 ]; then lane=0; else lane=$(( (i - 2) % (jobs - 1) + 1 )); fi
    echo "$lane $i $run" >>"$dir/plan"
done
lanes=$(cut -d' ' -f1 "$dir/plan" | sort -u)
for lane in $lanes; do
    (
        while read -r l i run; do
            [ "$l" = "$lane" ] || continue
            cp=${run##*:}
            sched=${run%:*}
            if [ "$i" = 1 ]; then
                run_one "$i" "$sched" "$cp" "$@"
            else
                # shellcheck disable=SC2086
                run_one "$i" "$sched" "$cp" $excl "$@"
            fi
        done <"$dir/plan"
    ) &
done
wait

tp=0 tf=0 ts=0 status=0 i=0
for run in $runs; do
    i=$((i + 1))
    cp=${run##*:}
    sched=${run%:*}
    rc=$(cat "$dir/$i.rc")
    echo "== CUDA suite on the emulator: schedule $sched, cp.async completing $cp"
    if [ "$i" != 1 ] && [ -n "$forward_only" ]; then echo "(not run under this schedule: $forward_only)"; fi
    grep -v '^ok ' "$dir/$i.log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$dir/$i.log" | tail -1)
    if [ -z "$line" ]; then
        echo "run under $sched ended without a summary (exit status $rc)"
        tf=$((tf + 1))
        status=1
        continue
    fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + ${s:-0}))
    if [ "$rc" = 3 ]; then
        echo "the emulator detected kernel errors in this run (see 'bgemu: error' above)"
        tf=$((tf + 1))
    fi
    [ "$rc" = 0 ] || status=1
done
echo "emulated CUDA suite, 3 schedules:"
echo "$tp passed, $tf failed, $ts skipped"
exit $status
