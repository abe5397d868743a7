#!/bin/sh
# Runs the CUDA suite (RUNNER --gpu [FILTER...]) on the emulator three times,
# each under another schedule:
#   forward  threads and blocks in index order, cp.async landing at the wait
#   reverse  everything in reverse order, cp.async landing at once
#   random   a seeded shuffle (BGEMU_SEED, default 1), cp.async at the wait
# A kernel fault the emulator detects makes that run's exit status 3 even
# where the test itself passed. Prints each run's summary, then one closing
# line adding them up: "N passed, N failed, N skipped".
set -u
runner=$1
shift
seed=${BGEMU_SEED:-1}
tp=0 tf=0 ts=0 status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for run in "forward late" "reverse early" "random:$seed late"; do
    sched=${run% *}
    cp=${run#* }
    echo "== CUDA suite on the emulator: schedule $sched, cp.async completing $cp"
    BGEMU_SCHEDULE=$sched BGEMU_CP_ASYNC=$cp BGEMU_FAIL_EXIT=1 "$runner" --gpu "$@" >"$log" 2>&1
    rc=$?
    grep -v '^ok ' "$log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
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
