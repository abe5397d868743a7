#!/bin/sh
# Runs the CUDA suite (RUNNER --gpu [FILTER...]) on the emulator three times,
# each under another schedule:
#   forward  threads and blocks in index order, cp.async landing at the wait
#   reverse  everything in reverse order, cp.async landing at once
#   random   a seeded shuffle (BGEMU_SEED, default 1), cp.async at the wait
# BGEMU_JOBS of them at a time (default 2: the emulator uses one core each).
# A kernel fault the emulator detects makes that run's exit status 3 even
# where the test itself passed. Prints each run's output (all but the 'ok'
# lines) in order, then one closing line adding the runs up:
# "N passed, N failed, N skipped".
set -u
runner=$1
shift
seed=${BGEMU_SEED:-1}
jobs=${BGEMU_JOBS:-2}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
runs="forward:late reverse:early random:$seed:late"


i=0 running=0
for run in $runs; do
    i=$((i + 1))
    cp=${run##*:}
    sched=${run%:*}
    (BGEMU_SCHEDULE=$sched BGEMU_CP_ASYNC=$cp BGEMU_FAIL_EXIT=1 "$runner" --gpu "$@" >"$dir/$i.log" 2>&1; echo $? >"$dir/$i.rc") &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

tp=0 tf=0 ts=0 status=0 i=0
for run in $runs; do
    i=$((i + 1))
    cp=${run##*:}
    sched=${run%:*}
    rc=$(cat "$dir/$i.rc")
    echo "== CUDA suite on the emulator: schedule $sched, cp.async completing $cp"
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
