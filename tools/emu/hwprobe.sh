#!/bin/sh
# On a machine with an NVIDIA GPU: builds tools/emu/selftest.cu with the real
# nvcc for the device's architecture (sm_90a on Hopper, so the wgmma probes
# run too) and records every raw result the hardware returns for ldmatrix,
# mma.sync, the shuffles and votes, cp.async zero-fill, cvt and wgmma into
# tools/emu/fixtures/hw-smXY.txt (or FILE). Commit that file: the emulated
# self-test (make emu-selftest, make test-emu) then checks the emulator
# against the hardware word for word, not only against the PTX manual.
#   tools/emu/hwprobe.sh [FILE]
set -eu
cd "$(dirname "$0")/../.."
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
[ -n "$cc" ] || { echo "hwprobe: no GPU answers nvidia-smi" >&2; exit 2; }
out=${1:-tools/emu/fixtures/hw-sm$cc.txt}
arch="-gencode arch=compute_$cc,code=sm_$cc"
extra=
if [ "$cc" = 90 ]; then arch="-gencode arch=compute_90a,code=sm_90a"; extra=-DBG_SELFTEST_SM90A=1; fi
mkdir -p build/hwprobe "$(dirname "$out")"
# shellcheck disable=SC2086
nvcc -std=c++17 -O2 $arch $extra -I. tools/emu/selftest.cu -o build/hwprobe/selftest
status=0
./build/hwprobe/selftest --record "$out.tmp" || status=$?
mv "$out.tmp" "$out"
echo "hwprobe: wrote $out (the worked examples $( [ $status = 0 ] && echo held || echo 'did NOT all hold: see FAIL above'))"
exit $status
