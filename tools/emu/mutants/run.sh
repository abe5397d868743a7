#!/bin/sh
# make test-emu-mutants: breaks the CUDA kernels on purpose, one fault at a
# time (tools/emu/mutants/list.sh), and checks that the emulated suite
# notices each one. Works in a copy of the tree (build-mutants/tree), so the
# checkout is never modified:
#   1. copy the tracked and untracked-but-not-ignored files, build EMU=1 there;
#   2. run the tests every mutant names, unmutated: they must pass;
#   3. per mutant: apply it (its text must occur exactly once in its file),
#      rebuild, run its tests under the three schedules of run-suite.sh
#      (small shapes), and count it caught when that run fails; restore.
# MUTANTS_ONLY=text runs the mutants whose name contains it. Exit status 1
# when a mutant goes unnoticed (or cannot be applied).
set -u
root=$(cd "$(dirname "$0")/../../.." && pwd)
work=${MUTANTS_DIR:-$root/build-mutants}
only=${MUTANTS_ONLY:-}
tree=$work/tree
jobs=${MUTANTS_JOBS:-2}
mkdir -p "$tree"

echo "== copying the tree into $tree"
(cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | (cd "$tree" && tar -xf -)
for d in .cache .peer; do
    if [ -e "$root/$d" ] && [ ! -e "$tree/$d" ]; then ln -s "$root/$d" "$tree/$d"; fi
done
echo "== building it for the emulator"
if ! make -C "$tree" --no-print-directory EMU=1 -j"$jobs" build-emu/tests/run >"$work/build.log" 2>&1; then
    tail -20 "$work/build.log"
    echo "the unmutated tree does not build"
    exit 1
fi

# mutate FILE OLD NEW: replace the one occurrence of the text OLD (one line or
# part of one) with NEW; fails unless OLD occurs exactly once.
mutate() {
    OLD=$2 NEW=$3 awk 'BEGIN { old = ENVIRON["OLD"]; new = ENVIRON["NEW"]; n = 0 }
        { line = $0; out = "";
          while ((i = index(line, old)) > 0) { out = out substr(line, 1, i - 1) new; line = substr(line, i + length(old)); n++ }
          print out line }
        END { if (n != 1) { printf "mutate: the text occurs %d times in %s\n", n, FILENAME > "/dev/stderr"; exit 1 } }' \
        "$1" >"$1.mutant" && mv "$1.mutant" "$1"
}

names= files= olds= news= filters= count=0
# mutant NAME FILE OLD NEW TEST-FILTER...: one entry of the list
mutant() {
    count=$((count + 1))
    eval "m_name_$count=\$1 m_file_$count=\$2 m_old_$count=\$3 m_new_$count=\$4"
    shift 4
    eval "m_filters_$count=\$*"
}
. "$root/tools/emu/mutants/list.sh"

# the tests the selected mutants run, once, unmutated
all_filters=
i=1
while [ $i -le $count ]; do
    eval "name=\$m_name_$i f=\$m_filters_$i"
    case $name in *"$only"*) all_filters="$all_filters $f" ;; esac
    i=$((i + 1))
done
echo "== the unmutated tree passes these tests:$all_filters"
# shellcheck disable=SC2086
if ! (cd "$tree" && BG_TEST_SIZE=small tools/emu/run-suite.sh ./build-emu/tests/run $all_filters >"$work/baseline.log" 2>&1); then
    grep -E "FAIL|bgemu: error" "$work/baseline.log" | head -20
    echo "the unmutated tests fail: fix that first"
    exit 1
fi
tail -1 "$work/baseline.log"

caught=0 missed=0 bad=0
i=1
while [ $i -le $count ]; do
    eval "name=\$m_name_$i file=\$m_file_$i old=\$m_old_$i new=\$m_new_$i f=\$m_filters_$i"
    i=$((i + 1))
    case $name in *"$only"*) ;; *) continue ;; esac
    log=$work/$name.log
    if ! mutate "$tree/$file" "$old" "$new" 2>"$log"; then
        echo "BAD     $name: cannot apply to $file ($(cat "$log"))"
        bad=$((bad + 1))
        cp "$root/$file" "$tree/$file"
        continue
    fi
    if ! make -C "$tree" --no-print-directory EMU=1 -j"$jobs" build-emu/tests/run >"$log" 2>&1; then
        echo "BAD     $name: the mutant does not compile ($(grep -m1 error "$log"))"
        bad=$((bad + 1))
    else
        # shellcheck disable=SC2086
        (cd "$tree" && BG_TEST_SIZE=small timeout 600 tools/emu/run-suite.sh ./build-emu/tests/run $f) >>"$log" 2>&1
        rc=$?
        if [ $rc -ne 0 ]; then
            why=$(grep -m1 -E "bgemu: error|^    tests/|^FAIL" "$log" | cut -c1-200)
            [ $rc = 124 ] && why="the tests did not finish (timeout)"
            echo "caught  $name: $why"
            caught=$((caught + 1))
        else
            echo "MISSED  $name ($file): $(tail -1 "$log")"
            missed=$((missed + 1))
        fi
    fi
    cp "$root/$file" "$tree/$file"
done
echo "mutants: $caught caught, $missed missed, $bad could not be applied"
[ $missed -eq 0 ] && [ $bad -eq 0 ]
