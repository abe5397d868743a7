#!/bin/sh
# bench/omp_spin.sh [BUDGIE] [OUT.md]: budgie's CPU step (SENet-18 w=0.67, batch 64, forward +
# backward, `budgie model time`, median of 3 steps) under libgomp's wait settings, on a quiet
# machine and beside one busy process (a shell loop on one core), in interleaved rounds. libgomp's
# own default spins 300,000 times before sleeping (GOMP_SPINCOUNT=300000 reproduces it: budgie
# now sets 1000 unless told otherwise, tools/budgie.c). A bench, not a test: quote the load.
set -u
bin=${1:-bin/budgie}
out=${2:-}
[ -x "$bin" ] || { echo "omp_spin: $bin not built (make)" >&2; exit 2; }
report() { if [ -n "$out" ]; then printf '%s\n' "$*" >>"$out"; fi; printf '%s\n' "$*"; }
if [ -n "$out" ]; then : >"$out"; fi
report "# OpenMP waiting on a shared CPU, $(date -u +%Y-%m-%d) ($(uname -n), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
report ""
report "- budgie: $("$bin" --version | head -1); \`budgie model time senet18:w=0.67 --batch 64 --steps 3\`, $(nproc) OpenMP threads"
report "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
report ""
report "| setting | round | quiet s | beside a busy process s |"
report "|---|---|---|---|"
step() { env "$@" "$bin" model time senet18:w=0.67 --batch 64 --steps 3 2>&1 | tail -1 | sed 's/.*median \([0-9.]*\) s.*/\1/'; }
for round in 1 2; do
    for setting in GOMP_SPINCOUNT=300000 GOMP_SPINCOUNT=30000 GOMP_SPINCOUNT=10000 GOMP_SPINCOUNT=1000 GOMP_SPINCOUNT=100 OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1; do
        q=$(step "$setting")
        sh -c 'while :; do :; done' &
        hog=$!
        sleep 1
        b=$(step "$setting")
        kill "$hog"
        wait "$hog" 2>/dev/null
        report "| $setting | $round | $q | $b |"
    done
done
report ""
report "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
