#!/bin/sh
# bench/haet_cpu_peer.sh [BUDGIE] [OUT.md] [PEER_BUDGET]: recipes/haet2021 on
# this machine's CPU beside the PyTorch peer (../shared/peer/haet_torch_ref.py,
# copied unchanged to .peer/, with .peer/cifar10-jpeg.tar.gz) at equal wall time.
#
# The peer checks its budget once per epoch after its data preparation, as
# the seed code did, so it runs past PEER_BUDGET (default 480 s) by its
# start-up and the rest of an epoch; its whole-process wall time W is
# measured from outside and becomes budgie's budget, which bounds budgie's
# whole process (data loading and checkpoints included). Same recipe on both
# sides: SENet-18 w=0.67, 500/100 images per class, seed 0, batch 512,
# SGD 0.042 / cosine T_max 240, AutoAugment + Cutout, fp32. Scaled to the CPU
# by time only: the model, the data and the schedule are the seed's; the
# 10 V100-minutes become W seconds of this CPU, so few epochs fit. Each side
# draws its own seeded subset (budgie's Philox draw, the peer's Python
# random), so the images differ, not their number. A bench, not a test: it
# quotes the load average; run it on a quiet machine.
set -u
bin=${1:-bin/budgie}
out=${2:-}
peer_budget=${3:-480}
peer=.peer/haet_torch_ref.py
tar=.peer/cifar10-jpeg.tar.gz
py=${PYTHON:-/usr/bin/python3}
[ -x "$bin" ] || { echo "haet_cpu_peer: $bin not built (make)" >&2; exit 2; }
[ -f "$peer" ] && [ -f "$tar" ] || {
    echo "haet_cpu_peer: copy ../shared/peer/haet_torch_ref.py and ../shared/data/cifar10-jpeg.tar.gz into .peer/" >&2
    exit 2
}
"$py" -c 'import torch' 2>/dev/null || { echo "haet_cpu_peer: $py cannot import torch (apt-get install python3-torch)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
report() {
    if [ -n "$out" ]; then printf '%s\n' "$*" >>"$out"; fi
    printf '%s\n' "$*"
}
if [ -n "$out" ]; then : >"$out"; fi

load0=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(now)
"$py" "$peer" --tar "$tar" --budget "$peer_budget" --seed 0 --width 0.67 --workers 2 >"$work/peer.log" 2>"$work/peer.err"
prc=$?
t1=$(now)
wall_p=$(echo "$t1 $t0" | awk '{ printf "%.1f", $1 - $2 }')
load1=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(now)
"$bin" train haet2021 --device cpu --budget "$wall_p" --out "$work/run" >"$work/budgie.log" 2>&1
brc=$?
t1=$(now)
wall_b=$(echo "$t1 $t0" | awk '{ printf "%.1f", $1 - $2 }')
load2=$(cut -d' ' -f1-3 /proc/loadavg)

pf=$(grep '"final"' "$work/peer.log" | tail -1)
bf=$(grep '"done"' "$work/run/log.jsonl" | tail -1)
p_ep=$(echo "$pf" | jq -r '.epochs // 0')
p_best=$(echo "$pf" | jq -r '.best_acc // 0')
p_last=$(echo "$pf" | jq -r '.last_acc // 0')
p_train=$(echo "$pf" | jq -r '.train_s // 0')
p_setup=$(grep '"setup_s"' "$work/peer.log" | head -1 | jq -r '.setup_s // 0')
b_ep=$(echo "$bf" | jq -r '.epochs // 0')
b_steps=$(echo "$bf" | jq -r '.steps // 0')
b_best=$(echo "$bf" | jq -r '100 * (.best_test_acc // 0)')
b_last=$(echo "$bf" | jq -r '100 * (.last_test_acc // 0)')
b_start=$(grep '"config"' "$work/run/log.jsonl" | head -1 | jq -r '.startup_s // 0')

report "# HAET 2021 recipe on the CPU: budgie vs the PyTorch peer at equal wall time, $(date -u +%Y-%m-%d)"
report ""
report "- machine: $(uname -n), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), no GPU"
report "- budgie: \`$bin train haet2021 --device cpu --budget $wall_p\`, $("$bin" --version | head -1)"
report "- peer: \`$py $peer --tar $tar --budget $peer_budget --seed 0 --width 0.67 --workers 2\` (PyTorch $("$py" -c 'import torch; print(torch.__version__)'), $("$py" -c 'import torch; print(torch.get_num_threads())') threads)"
report "- load average: $load0 before the peer, $load1 between, $load2 after budgie"
report "- exit status: peer $prc, budgie $brc"
report ""
report "| | wall s (outside) | start-up s | epochs | images trained | test acc last % | test acc best % |"
report "|---|---|---|---|---|---|---|"
report "| PyTorch peer | $wall_p | $p_setup | $p_ep | $(echo "$p_ep" | awk '{ print $1 * 5000 }') | $p_last | $p_best |"
report "| budgie | $wall_b | $b_start | $b_ep | $(echo "$b_steps" | awk '{ print $1 * 512 }') | $b_last | $b_best |"
report ""
report "The peer trains 9 x 512 + 1 x 392 images per epoch (drop_last off), budgie 9 x 512 (one graph shape);"
report "the peer's train_s is $p_train s. Raw logs follow."
report ""
report '```'
report "== peer stdout"
report "$(cat "$work/peer.log")"
report "== peer stderr (last lines)"
report "$(tail -5 "$work/peer.err")"
report "== budgie stdout"
report "$(cat "$work/budgie.log")"
report '```'
[ "$prc" = 0 ] && [ "$brc" = 0 ]
