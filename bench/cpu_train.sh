#!/bin/sh
# bench/cpu_train.sh [BUDGIE] [OUT.md] [BUDGET_S] [ROUNDS]: the built-in recipe
# (the README's main command: the small CNN on 500/100 CIFAR-10 images per
# class) for BUDGET_S seconds (default 60) of wall time, budgie beside the
# same recipe in PyTorch (bench/torch_cpu_train.py), alternating, ROUNDS
# rounds (default 2), THREADS threads (default 2) on each side. Reports the
# steps each side fitted in the budget, the test accuracy at the end and the
# peak resident memory measured from outside (/usr/bin/time). Needs the
# CIFAR-10 folders in .cache/cifar10 (budgie train unpacks them on first use).
# A bench, not a test: it quotes the load average; run it on a quiet machine.
set -u
bin=${1:-bin/budgie}
out=${2:-}
budget=${3:-60}
rounds=${4:-2}
threads=${THREADS:-2}
py=${PYTHON:-/usr/bin/python3}
data=.cache/cifar10
[ -x "$bin" ] || { echo "cpu_train: $bin not built (make)" >&2; exit 2; }
[ -d "$data/train" ] || { echo "cpu_train: $data/train missing (run $bin train once)" >&2; exit 2; }
"$py" -c 'import torch' 2>/dev/null || { echo "cpu_train: $py cannot import torch (apt-get install python3-torch)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "cpu_train: /usr/bin/time missing (apt-get install time)" >&2; exit 2; }
here=$(dirname "$0")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
report() {
    if [ -n "$out" ]; then printf '%s\n' "$*" >>"$out"; fi
    printf '%s\n' "$*"
}
if [ -n "$out" ]; then : >"$out"; fi
report "# Built-in recipe for ${budget} s on the CPU, budgie vs PyTorch ($(date -u +%Y-%m-%d), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
report ""
report "- commit $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown), $("$bin" --version | sed -n 's/^cpu: *kernels: /budgie kernels: /p'); PyTorch $("$py" -c 'import torch; print(torch.__version__)'); $threads threads each; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
report ""
report "| round | side | epochs | steps | test accuracy | wall s | peak RSS MiB |"
report "|---|---|---|---|---|---|---|"
# One table row from a side's closing JSON line (both sides write budgie's
# compact field names) and /usr/bin/time's record.
row() {
    ep=$(printf '%s' "$3" | sed -n 's/.*"epochs":\([0-9]*\).*/\1/p')
    st=$(printf '%s' "$3" | sed -n 's/.*"steps":\([0-9]*\).*/\1/p')
    acc=$(printf '%s' "$3" | sed -n 's/.*"last_test_acc":\([0-9.]*\).*/\1/p')
    rss=$(sed -n 's/rss_kib=\([0-9]*\).*/\1/p' "$work/time")
    wall=$(sed -n 's/.*wall=\([0-9.]*\).*/\1/p' "$work/time")
    report "| $1 | $2 | $ep | $st | $acc | $wall | $((rss / 1024)) |"
}
b() {
    OMP_NUM_THREADS=$threads /usr/bin/time -f 'rss_kib=%M wall=%e' -o "$work/time" \
        "$bin" train --budget "$budget" --out "$work/run$1" >"$work/b.log" 2>&1
    row "$1" budgie "$(grep -h '"done":true' "$work/run$1/log.jsonl" "$work/b.log" 2>/dev/null | head -n 1)"
}
p() {
    /usr/bin/time -f 'rss_kib=%M wall=%e' -o "$work/time" "$py" "$here/torch_cpu_train.py" "$data" "$budget" "$threads" \
        >"$work/p.log" 2>&1
    row "$1" PyTorch "$(grep '"done":true' "$work/p.log")"
}
r=1
while [ "$r" -le "$rounds" ]; do
    if [ $((r % 2)) = 1 ]; then b "$r"; p "$r"; else p "$r"; b "$r"; fi
    r=$((r + 1))
done
report ""
report "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
