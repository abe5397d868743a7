#!/bin/sh
# Prepare a dataset for development and tests; print its path on stdout
# (messages go to stderr, so `d=$(tools/fetch_data.sh)` works).
#
#   tools/fetch_data.sh [cifar10-jpeg.tar.gz]
#   tools/fetch_data.sh imagenette [imagenette2-224.tar]
#
# imagenette: the bundled Imagenette tar (default ../shared/data/imagenette2-224.tar)
# is unpacked the same way into .cache/imagenette2-224/ (train/<wnid>/*.JPEG and
# val/<wnid>/*.JPEG), the data of recipes/rcv2023.
#
# 1. The bundled CIFAR-10 JPEG tarball (default ../shared/data/cifar10-jpeg.tar.gz
#    relative to the repo root) is unpacked once into the ignored .cache/cifar10/
#    (train/<class>/NNNN.jpg, test/<class>/NNNN.jpg). It is unpacked into a
#    temporary folder and renamed into place with a .done marker inside, so an
#    interrupted unpack is never mistaken for a complete one.
# 2. Otherwise Fashion-MNIST from the Debian package, if installed.
# 3. Otherwise install that package when running as root, or fail saying how.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
name=cifar10
untar="tar -xzf"
need=test
if [ $# -ge 1 ] && [ "$1" = imagenette ]; then
    shift
    name=imagenette2-224
    untar="tar -xf"
    need=val
    tarball=${1:-$repo/../shared/data/imagenette2-224.tar}
else
    tarball=${1:-$repo/../shared/data/cifar10-jpeg.tar.gz}
fi
cache=$repo/.cache/$name
fmnist=/usr/share/datasets/fashion-mnist

if [ $# -ge 1 ] && [ ! -f "$1" ]; then
    echo "fetch_data: $1: no such file" >&2
    exit 1
fi

if [ -f "$tarball" ]; then
    if [ ! -f "$cache/.done" ]; then
        mkdir -p "$repo/.cache"
        tmp=$(mktemp -d "$repo/.cache/$name.partial.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT INT TERM
        echo "fetch_data: unpacking $tarball into $cache" >&2
        $untar "$tarball" -C "$tmp"
        if [ ! -d "$tmp/train" ] || [ ! -d "$tmp/$need" ]; then
            echo "fetch_data: $tarball has no train/ and $need/ folders" >&2
            exit 1
        fi
        touch "$tmp/.done"
        # A folder without .done is the leftover of an older, interrupted run.
        if [ -e "$cache" ] && [ ! -f "$cache/.done" ]; then rm -rf "$cache"; fi
        # -T: never move into an existing folder; losing a race to a parallel
        # run is fine as long as that run finished.
        if ! mv -T "$tmp" "$cache" 2>/dev/null && [ ! -f "$cache/.done" ]; then
            echo "fetch_data: cannot move the unpacked data to $cache" >&2
            exit 1
        fi
        rm -rf "$tmp"
        trap - EXIT INT TERM
    fi
    echo "$cache"
    exit 0
fi

if [ "$name" != cifar10 ]; then
    echo "fetch_data: $tarball: no such file" >&2
    exit 1
fi

if [ -d "$fmnist" ]; then
    echo "$fmnist"
    exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "fetch_data: installing dataset-fashion-mnist" >&2
    if apt-get install -y dataset-fashion-mnist >&2 && [ -d "$fmnist" ]; then
        echo "$fmnist"
        exit 0
    fi
    echo "fetch_data: apt-get install dataset-fashion-mnist failed" >&2
    exit 1
fi

echo "fetch_data: no dataset found: expected $tarball, or $fmnist" >&2
echo "fetch_data: install Fashion-MNIST as root with: apt-get install dataset-fashion-mnist" >&2
exit 1
