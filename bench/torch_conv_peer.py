#!/usr/bin/python3
"""PyTorch peer numbers for `budgie bench gemm` and `budgie bench conv`: the same
operations through torch (cuBLAS / cuDNN), timed the same way (CUDA events,
warm-up, then the median of the repetitions), in the same run.

    python3 bench/torch_conv_peer.py gemm --spec "M,N,K,BATCH,TA,TB;..." [--dtype f16|f32] [--reps 20]
    python3 bench/torch_conv_peer.py conv --spec "N,H,W,C,CO,KH,KW,SH,SW,PH,PW,DH,DW,GROUPS;..." [--dtype f16|f32]

Prints one line per spec entry:
    gemm <i> <ms>
    conv <i> <fwd_ms> <dgrad_ms> <wgrad_ms>

- gemm: torch.matmul on (batched, optionally transposed) operands of the given dtype.
- conv: torch.nn.functional.conv2d on channels_last tensors under autocast (f16,
  i.e. AMP) or in f32 with TF32 off (true FP32, the peak budgie's FP32 path is
  compared against); cudnn.benchmark on, so cuDNN picks its fastest algorithm.
  The two backward passes are timed separately through the op autograd calls,
  aten.convolution_backward with output_mask (input only) and (weight only).
"""
import argparse
import sys

import torch


def timed(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def parse(spec, n):
    out = []
    for part in spec.split(";"):
        part = part.strip()
        if not part:
            continue
        v = [int(x) for x in part.split(",")]
        if len(v) != n:
            sys.exit(f"spec entry '{part}' has {len(v)} numbers, expected {n}")
        out.append(v)
    return out


def bench_gemm(args, dt):
    for i, (m, n, k, batch, ta, tb) in enumerate(parse(args.spec, 6)):
        shape_a = (k, m) if ta else (m, k)
        shape_b = (n, k) if tb else (k, n)
        a = torch.randn((batch,) + shape_a, device="cuda", dtype=dt)
        b = torch.randn((batch,) + shape_b, device="cuda", dtype=dt)
        if batch == 1:
            a, b = a[0], b[0]
        opa = a.transpose(-1, -2) if ta else a
        opb = b.transpose(-1, -2) if tb else b
        ms = timed(lambda: torch.matmul(opa, opb), args.reps)
        print(f"gemm {i} {ms:.5f}", flush=True)


def bench_conv(args, dt):
    f16 = dt == torch.float16
    for i, (n, h, w, c, co, kh, kw, sh, sw, ph, pw, dh, dw, groups) in enumerate(parse(args.spec, 14)):
        x = torch.randn(n, c, h, w, device="cuda").to(memory_format=torch.channels_last)
        wt = torch.randn(co, c // groups, kh, kw, device="cuda").to(memory_format=torch.channels_last)
        if f16:
            x, wt = x.half(), wt.half()
        st, pad, dil = (sh, sw), (ph, pw), (dh, dw)

        def fwd():
            with torch.autocast("cuda", dtype=torch.float16, enabled=f16):
                return torch.nn.functional.conv2d(x, wt, None, st, pad, dil, groups)

        y = fwd()
        gy = torch.randn_like(y).contiguous(memory_format=torch.channels_last)

        def bwd(mask):
            return torch.ops.aten.convolution_backward(gy, x, wt, None, st, pad, dil, False, (0, 0), groups, mask)

        t_f = timed(fwd, args.reps)
        t_d = timed(lambda: bwd([True, False, False]), args.reps)
        t_w = timed(lambda: bwd([False, True, False]), args.reps)
        print(f"conv {i} {t_f:.5f} {t_d:.5f} {t_w:.5f}", flush=True)
        del x, wt, y, gy


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["gemm", "conv"])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("torch sees no CUDA device")
    torch.backends.cudnn.benchmark = True
    # FP32 means FP32: no TF32 tensor cores behind torch's back.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    dt = torch.float16 if args.dtype == "f16" else torch.float32
    print(f"# torch {torch.__version__} cudnn {torch.backends.cudnn.version()} {torch.cuda.get_device_name()}", flush=True)
    if args.what == "gemm":
        bench_gemm(args, dt)
    else:
        bench_conv(args, dt)


if __name__ == "__main__":
    main()
