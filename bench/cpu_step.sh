#!/bin/sh
# bench/cpu_step.sh [BUDGIE] [OUT.md] [ROUNDS]: budgie's CPU training step beside
# PyTorch's on this machine (issue #14 point 4). Configurations: SENet-18
# w=0.67 at batch 64, ResNet-18 at batch 8 and 64, each at 1 and 2 threads.
# Each measurement is its own process (`budgie bench cpu_step`,
# bench/torch_cpu_step.py), so peak resident memory is per process; the two
# sides alternate inside every round and swap order from round to round, and
# the table gives medians over ROUNDS (default 3). Environment: STEPS (timed
# steps per process, 3), WARMUP (2), TORCH_LAYOUT=channels_last for
# PyTorch's NHWC path, BUDGIE_CPU / BUDGIE_CPU_ISA for budgie's kernels.
# A bench, not a test: it quotes the load average; run it on a quiet machine.
set -u
bin=${1:-bin/budgie}
out=${2:-}
rounds=${3:-3}
steps=${STEPS:-3}
warmup=${WARMUP:-2}
py=${PYTHON:-/usr/bin/python3}
layout=${TORCH_LAYOUT:-}
[ -x "$bin" ] || { echo "cpu_step: $bin not built (make)" >&2; exit 2; }
"$py" -c 'import torch' 2>/dev/null || { echo "cpu_step: $py cannot import torch (apt-get install python3-torch)" >&2; exit 2; }
here=$(dirname "$0")
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
report() {
    if [ -n "$out" ]; then printf '%s\n' "$*" >>"$out"; fi
    printf '%s\n' "$*"
}
if [ -n "$out" ]; then : >"$out"; fi
configs="senet18:w=0.67/64 resnet18/8 resnet18/64"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
report "# CPU training step, budgie vs PyTorch ($(date -u +%Y-%m-%d), $(nproc) cores: $cpu)"
report ""
report "- commit $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown), $("$bin" --version | sed -n 's/^cpu: *kernels: /budgie kernels: /p')"
report "- PyTorch $("$py" -c 'import torch; print(torch.__version__)')${layout:+, $layout}; each side: $warmup warm-up + $steps timed steps per process, $rounds rounds, interleaved"
report "- step: forward, cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4), loss read-back; random inputs"
report "- load average at start: $load0"
round=1
while [ "$round" -le "$rounds" ]; do
    for cfg in $configs; do
        model=${cfg%/*}
        batch=${cfg#*/}
        for t in 1 2; do
            b() { OMP_NUM_THREADS=$t "$bin" bench cpu_step --model "$model" --batch "$batch" --steps "$steps" --warmup "$warmup"; }
            p() { "$py" "$here/torch_cpu_step.py" "$model" "$batch" "$t" "$steps" "$warmup" $layout; }
            if [ $((round % 2)) = 1 ]; then b; p; else p; b; fi | sed "s|^|cfg=$model/$batch/$t |" | tee -a "$raw"
        done
    done
    round=$((round + 1))
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
report ""
report "| model | batch | threads | budgie img/s | PyTorch img/s | ratio | budgie peak RSS MiB | PyTorch peak RSS MiB (base) |"
report "|---|---|---|---|---|---|---|---|"
awk '
function med(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    key = substr($1, 5); side = $2  # after "cfg="; the model spec may hold "="
    for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    ips[key, side] = ips[key, side] " " v["img_s"]
    rss[key, side] = rss[key, side] " " v["peak_rss_mib"]
    base[key, side] = v["base_rss_mib"]
}
END {
    for (k = 1; k <= n; k++) {
        key = order[k]; split(key, p, "/")
        bi = med(ips[key, "budgie"]); ti = med(ips[key, "torch"])
        printf "| %s | %s | %s | %.1f | %.1f | %.2fx | %.0f | %.0f (%.0f) |\n", p[1], p[2], p[3], bi, ti, (ti > 0 ? bi / ti : 0),
               med(rss[key, "budgie"]), med(rss[key, "torch"]), base[key, "torch"]
    }
}' "$raw" | while IFS= read -r line; do report "$line"; done
report ""
report "- load average at end: $load1"
report ""
report "Raw lines:"
report ""
report '```'
while IFS= read -r line; do report "$line"; done <"$raw"
report '```'
