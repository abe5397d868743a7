#!/bin/sh
# bench/search_cpu.sh [BUDGIE] [OUT_PREFIX] [EVALS] [BUDGET_PER_EVAL] [FINAL_BUDGET]: a NAS and an
# HPO search on this CPU over a reduced recipe (issue #13 point 7), then the best point of each
# trained once more beside the starting recipe at equal budget. Writes OUT_PREFIX.md (the
# table, the commands, the load), OUT_PREFIX-{nas,hpo}.jsonl (the histories) and the report PNGs.
#
# The reduced recipe: recipes/default (small CNN, crop + flip, SGD, cosine over the budget) with
# 200 training images per class, 50 of them carved out for validation, scored on the validation
# split; NAS over the small CNN's width (its family has no depth or resolution multiplier; the
# ResNet-18 family at w = 0.25 trains 6 steps in 30 s on this loaded CPU, not one epoch), HPO over
# lr, wd, optimizer and batch of the small CNN. One evaluation at a time (--jobs 1: every
# run uses both cores). A bench, not a test: budgets are wall time, so the machine's load moves
# every number; the report quotes it.
set -u
bin=${1:-bin/budgie}
prefix=${2:-bench/results/search-cpu}
evals=${3:-30}
per_eval=${4:-30}
final=${5:-60}
[ -x "$bin" ] || { echo "search_cpu: $bin not built (make)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$prefix.md"
: >"$out"
report() { printf '%s\n' "$*" | tee -a "$out"; }
reduce="--train_per_class 200 --val_per_class 50"

# $1 verb, $2 name, rest: options
search() {
    verb=$1 name=$2
    shift 2
    t0=$(date +%s)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    "$bin" search "$verb" recipes/default $reduce --budget-per-eval "$per_eval" --evals "$evals" --jobs 1 \
        --out "$work/$name" "$@" >"$work/$name.out" 2>&1
    rc=$?
    t1=$(date +%s)
    cp "$work/$name/history.jsonl" "$prefix-$name.jsonl"
    "$bin" search report "$work/$name/history.jsonl" --top 5 --out "$prefix-$name.png" >"$work/$name.report" 2>&1
    report "## $verb: \`budgie search $verb recipes/default $reduce --budget-per-eval $per_eval --evals $evals --jobs 1 $*\`"
    report ""
    report "exit $rc, $((t1 - t0)) s, load average $load at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end;" \
        "history: \`$(basename "$prefix")-$name.jsonl\`, plots: \`$(basename "$prefix")-$name*.png\`"
    report ""
    report '```'
    report "$(tail -8 "$work/$name.out")"
    report "== budgie search report"
    report "$(cat "$work/$name.report")"
    report '```'
    report ""
}

# the best point's options (the first "budgie train DIR/recipe ..." line of the report)
best_args() { grep -m1 'budgie train ' "$work/$1.report" | sed 's/.*budgie train [^ ]* //'; }

# $1 label, rest: train options; prints a table row
final_run() {
    label=$1
    shift
    d="$work/final-$(echo "$label" | tr 'A-Z ' 'a-z_')"
    "$bin" train recipes/default $reduce "$@" --budget "$final" --out "$d" >/dev/null 2>&1
    rc=$?
    done_line=$(grep '"done"' "$d/log.jsonl" 2>/dev/null | tail -1)
    val=$(grep '"val_acc"' "$d/log.jsonl" 2>/dev/null | jq -s 'map(.val_acc) | max // 0 | . * 100')
    test=$(echo "$done_line" | jq -r '100 * (.last_test_acc // 0)')
    ep=$(echo "$done_line" | jq -r '.epochs // 0')
    report "| $label | \`$*\` | $rc | $ep | $val | $test |"
}

report "# Search on the CPU: NAS and HPO over budgeted runs, $(date -u +%Y-%m-%d)"
report ""
report "- machine: $(uname -n), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), no GPU"
report "- budgie: $("$bin" --version | head -1)"
report "- $evals evaluations of $per_eval s each per search; final runs of $final s"
report ""
search nas nas
search hpo hpo
report "## The best points trained again beside the starting recipe, $final s each"
report ""
report "| run | options | exit | epochs | best val acc % | last test acc % |"
report "|---|---|---|---|---|---|"
final_run "start (the recipe as it is)"
final_run "NAS best" $(best_args nas)
final_run "HPO best" $(best_args hpo)
report ""
report "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
