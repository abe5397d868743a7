#!/bin/sh
# bench/budget_overrun.sh [BUDGIE] [OUT.md]: how far budgeted runs go past
# their budget, measured from outside the process (fork to exit, which
# includes data loading, the final checkpoint and the process teardown).
# 20 runs of mixed models and budgets (5 s to 120 s, about 9.5 minutes in
# all) on this machine's default device; prints one line per run and the
# worst overrun against the target: never above 0.5 s or 1% of the budget,
# whichever is larger (issue #12). A bench, not a test: the machine's load
# moves the numbers, so the report quotes it. Exit status 1 when a run
# misses the target or fails.
set -u
bin=${1:-bin/budgie}
out=${2:-}
[ -x "$bin" ] || { echo "budget_overrun: $bin not built (make)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# budget model extra-options
runs="5 small_cnn
5 small_cnn:w=0.5
5 resnet18:w=0.25
6 small_cnn:w=2
7 senet18:w=0.25
8 small_cnn
10 resnet18:w=0.25
10 small_cnn:w=0.5
12 small_cnn:w=2
15 senet18:w=0.25
15 small_cnn
20 resnet18:w=0.5
20 small_cnn:w=0.5
25 senet18:w=0.5
30 small_cnn:w=2
30 resnet18:w=0.25
40 resnet18:w=0.25
60 senet18:w=0.67
90 small_cnn
120 senet18:w=0.67"

now() { date +%s.%N; }
report() {
    if [ -n "$out" ]; then printf '%s\n' "$*" >>"$out"; fi
    printf '%s\n' "$*"
}
if [ -n "$out" ]; then : >"$out"; fi
report "# Budget overrun, $(date -u +%Y-%m-%d) ($(uname -n), $(nproc) cores)"
report ""
report "- command: \`bench/budget_overrun.sh $bin\`; commit $("$bin" --version | head -1)"
report "- device: $("$bin" --version | sed -n 's/^device: //p')"
report "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
report "- wall: fork to exit, from outside; limit: max(0.5 s, 1% of the budget)"
report ""
report "| # | budget s | model | wall s | overrun s | limit s | epochs | steps | result |"
report "|---|---|---|---|---|---|---|---|---|"
worst=-1000 worst_ratio=-1000 fails=0 i=0
echo "$runs" | while read -r budget model; do
    i=$((i + 1))
    t0=$(now)
    "$bin" train --budget "$budget" --model "$model" --out "$work/run$i" >"$work/log$i" 2>&1
    rc=$?
    t1=$(now)
    wall=$(echo "$t1 $t0" | awk '{ printf "%.3f", $1 - $2 }')
    over=$(echo "$wall $budget" | awk '{ printf "%.3f", $1 - $2 }')
    limit=$(echo "$budget" | awk '{ l = 0.01 * $1; if (l < 0.5) l = 0.5; printf "%.3f", l }')
    epochs=$(grep -o '"epochs":[0-9]*' "$work/log$i" | tail -1 | cut -d: -f2)
    steps=$(grep -o '"steps":[0-9]*' "$work/log$i" | tail -1 | cut -d: -f2)
    ok=$(echo "$over $limit" | awk '{ print ($1 <= $2) ? "ok" : "OVER" }')
    [ "$rc" = 0 ] || ok="FAILED (exit $rc: $(tail -1 "$work/log$i"))"
    report "| $i | $budget | $model | $wall | $over | $limit | ${epochs:-0} | ${steps:-0} | $ok |"
    echo "$over $limit $ok" >>"$work/summary"
    rm -rf "$work/run$i"
done
report ""
summary=$(awk '{ if ($1 > w) w = $1; r = $1 / $2; if (r > wr) wr = r; if ($3 != "ok") f++ }
    BEGIN { w = -1e9; wr = -1e9; f = 0 }
    END { printf "worst overrun %.3f s; worst overrun / limit %.2f; %d of %d runs missed the target or failed", w, wr, f, NR }' "$work/summary")
report "$summary"
report "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
case $summary in *" 0 of "*) exit 0 ;; *) exit 1 ;; esac
