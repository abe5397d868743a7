#!/bin/sh
# Make a fresh Debian 12 machine ready to build and run budgie: install the
# build dependencies that are missing (apt-get, when root; otherwise print the
# command to run), then unpack the bundled data (tools/fetch_data.sh).
# GNU parallel is among them: the search's --launcher parallel and its test
# (tests/test_search_launch.c, which skips without it). Slurm is not: `make
# test-slurm` installs it itself when it can (tools/slurm/test-slurm.sh).
# Idempotent and quiet when everything is there.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)

need=""
for pkg in gcc make libc6-dev libjansson-dev libturbojpeg0-dev libpng-dev zlib1g-dev parallel; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need="$need $pkg"
done
if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing$need" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 || true
        # shellcheck disable=SC2086
        apt-get install -y -qq $need >&2
    else
        echo "setup: missing packages:$need; run: sudo apt-get install$need" >&2
        exit 1
    fi
fi
if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "setup: no nvcc found: budgie builds CPU-only (install the CUDA toolkit for the GPU backend)" >&2
fi
"$repo/tools/fetch_data.sh" >/dev/null
