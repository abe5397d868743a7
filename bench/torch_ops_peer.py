#!/usr/bin/env python3
"""PyTorch peer of the GPU bench cases of issue 6 (`budgie bench hbm|bn|se|attn|opt|step`).

The bench case runs this script in the same run, on the same GPU, with the same shapes, and
prints our time next to PyTorch's. Each measurement is one JSON line {"name": ..., "ms": ...}
(the median of CUDA-event timings after a warm-up); anything else printed is shown as is.

    python3 bench/torch_ops_peer.py hbm
    python3 bench/torch_ops_peer.py bn   --n 256 --h 32 --w 32 --c 128 --dtype f16
    python3 bench/torch_ops_peer.py se   --n 256 --h 16 --w 16 --c 256 --dtype f16
    python3 bench/torch_ops_peer.py attn --n 96 --h 40 --w 40 --c 128 --r 2 --card 1 --dtype f16
    python3 bench/torch_ops_peer.py opt  --kind adam --dtype f32 --scale 1
    python3 bench/torch_ops_peer.py step --model senet18:w=0.67 --batch 512 --size 32 [--amp]

Activations are NCHW tensors in channels_last memory (the NHWC layout budgie uses), f16 or
f32; batchnorm parameters and running statistics f32 (PyTorch's AMP layout). The split
attention follows timm's SplitAttn/RadixSoftmax code; the optimizer is torch.optim with
fused=True where this torch has it (else foreach=True). `step` takes SENet-18 from the shared
HAET peer (.peer/haet_torch_ref.py, as .peer/torch_step_bench.py does) and ResNeSt from timm,
and times zero_grad + forward + cross-entropy + backward + SGD step (+ GradScaler with --amp).
"""
import argparse
import json
import os
import statistics
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the bench case prints this line and carries on without a peer
    print(f"torch is not available: {e}")
    sys.exit(0)


def timed(fn, warm=5, reps=30):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


def out(name, ms, **kw):
    print(json.dumps(dict(name=name, ms=ms, **kw)), flush=True)


def act(args, *shape):
    dt = torch.float16 if args.dtype == "f16" else torch.float32
    return torch.randn(*shape, device="cuda", dtype=dt).contiguous(memory_format=torch.channels_last)


def case_hbm(args):
    x = torch.randn(1 << 27, device="cuda")  # 512 MiB, as bench/bench_hbm.c
    y = torch.empty_like(x)
    out("copy", timed(lambda: y.copy_(x)), bytes=2 * x.numel() * 4)


def case_bn(args):
    n, c, h, w = args.n, args.c, args.h, args.w
    x = act(args, n, c, h, w).requires_grad_()
    dy = act(args, n, c, h, w)
    g = torch.rand(c, device="cuda").add_(0.5).requires_grad_()
    b = torch.randn(c, device="cuda").requires_grad_()
    rm, rv = torch.zeros(c, device="cuda"), torch.ones(c, device="cuda")

    def bn(training):
        return F.batch_norm(x, rm, rv, g, b, training=training, momentum=0.1, eps=1e-5)

    with torch.no_grad():
        out("bn_fwd_train", timed(lambda: bn(True)))
        out("bn_relu_fwd_train", timed(lambda: F.relu(bn(True))))
        out("bn_fwd_eval", timed(lambda: bn(False)))
    y = bn(True)
    out("bn_bwd_train", timed(lambda: torch.autograd.grad(y, (x, g, b), dy, retain_graph=True)))
    yr = F.relu(bn(True))
    out("bn_relu_bwd_train", timed(lambda: torch.autograd.grad(yr, (x, g, b), dy, retain_graph=True)))


def case_se(args):
    n, c, h, w = args.n, args.c, args.h, args.w
    x = act(args, n, c, h, w).requires_grad_()
    res = act(args, n, c, h, w).requires_grad_()
    dy = act(args, n, c, h, w)
    s = torch.rand(n, c, device="cuda", dtype=x.dtype).requires_grad_()
    with torch.no_grad():
        out("se_gap", timed(lambda: x.mean((2, 3))))
        out("se_scale_fwd", timed(lambda: F.relu(x * s[:, :, None, None] + res)))
    y = F.relu(x * s[:, :, None, None] + res)
    out("se_scale_bwd", timed(lambda: torch.autograd.grad(y, (x, s, res), dy, retain_graph=True)))


def case_attn(args):
    n, c, h, w, r, card = args.n, args.c, args.h, args.w, args.r, args.card
    x = act(args, n, r * c, h, w).requires_grad_()
    gate = torch.randn(n, r * c, device="cuda", dtype=x.dtype)
    a = torch.rand(n, r * c, device="cuda", dtype=x.dtype).requires_grad_()
    dy = act(args, n, c, h, w)

    def gap_splits():  # timm SplitAttn: x.reshape(B, radix, C, H, W).sum(1), then the mean
        return x.reshape(n, r, c, h, w).sum(dim=1).mean((2, 3))

    def rsoftmax():  # timm RadixSoftmax
        t = gate.view(n, card, r, -1).transpose(1, 2)
        return F.softmax(t, dim=1).reshape(n, -1)

    def wsum():  # timm SplitAttn: (x * attn).sum(dim=1)
        return (x.reshape(n, r, c, h, w) * a.reshape(n, r, c, 1, 1)).sum(dim=1)

    with torch.no_grad():
        out("attn_gap_splits", timed(gap_splits))
        out("attn_rsoftmax_fwd", timed(rsoftmax))
        out("attn_wsum_fwd", timed(wsum))
    y = wsum()
    out("attn_wsum_bwd", timed(lambda: torch.autograd.grad(y, (x, a), dy, retain_graph=True)))


def resnet18_sizes(scale):
    sizes, cin = [int(64 * 3 * 49 * scale), 64, 64], 64
    for stage in range(4):
        ch = 64 << stage
        for blk in range(2):
            sizes += [int(ch * cin * 9 * scale), ch, ch, int(ch * ch * 9 * scale), ch, ch]
            if blk == 0 and stage > 0:
                sizes += [int(ch * cin * scale), ch, ch]
            cin = ch
    return sizes + [int(1000 * 512 * scale), 1000]


def case_opt(args):
    dt = torch.float16 if args.dtype == "f16" else torch.float32
    ps = [torch.randn(k, device="cuda", dtype=dt, requires_grad=True) for k in resnet18_sizes(args.scale)]
    for p in ps:
        p.grad = torch.randn_like(p) * 1e-2
    kinds = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
             "adamax": torch.optim.Adamax, "adagrad": torch.optim.Adagrad, "adadelta": torch.optim.Adadelta,
             "asgd": torch.optim.ASGD}
    kw = dict(lr=0.01, momentum=0.9, weight_decay=5e-4) if args.kind == "sgd" else {}
    opt, mode = None, "single-tensor"
    for extra, label in ((dict(fused=True), "fused"), (dict(foreach=True), "foreach"), ({}, "single-tensor")):
        try:
            opt, mode = kinds[args.kind](ps, **kw, **extra), label
            opt.step()
            break
        except (TypeError, RuntimeError, ValueError):
            opt = None
    out("opt_step", timed(opt.step), mode=mode, elements=sum(p.numel() for p in ps))


def case_step(args):
    name, _, opts = args.model.partition(":")
    kv = dict(o.split("=") for o in opts.split(",") if o)
    if name == "senet18":
        peer = os.path.join(".peer", "haet_torch_ref.py")
        if not os.path.exists(peer):
            print(f"no {peer}: copy /work/shared/peer to .peer/ for the SENet-18 definition")
            return
        src = open(peer).read()
        env = {"torch": torch, "nn": torch.nn, "F": F}  # what the class definitions use
        exec(src[src.index("# ---- scaled SENet-18"):src.index("random.seed(args.seed)")], env)
        model = env["SENet18"](float(kv.get("w", 1.0)), int(kv.get("classes", 10)), args.size)
        env["init"](model)
        classes = int(kv.get("classes", 10))
    elif name.startswith("resnest"):
        import timm
        classes = int(kv.get("classes", 1000))
        model = timm.create_model(name, num_classes=classes)
    else:
        print(f"no PyTorch twin for model '{name}' in this peer")
        return
    model = model.cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    scaler = torch.cuda.amp.GradScaler(enabled=args.amp)
    xb = torch.randn(args.batch, 3, args.size, args.size, device="cuda").contiguous(memory_format=torch.channels_last)
    yb = torch.randint(0, classes, (args.batch,), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.float16, enabled=args.amp):
            loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    out("step", timed(step, warm=5, reps=20), batch=args.batch, amp=args.amp)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=["hbm", "bn", "se", "attn", "opt", "step"])
    for k, v in (("n", 256), ("h", 32), ("w", 32), ("c", 128), ("r", 2), ("card", 1), ("batch", 512), ("size", 32)):
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--dtype", default="f16", choices=["f16", "f32"])
    ap.add_argument("--kind", default="adam")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--model", default="senet18:w=0.67")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--json", action="store_true", help="accepted for the bench cases; output is always JSON lines")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch sees no CUDA device")
        return
    torch.backends.cudnn.benchmark = True
    print(json.dumps(dict(name="device", ms=0, device=torch.cuda.get_device_name(), torch=torch.__version__)))
    globals()["case_" + args.case](args)


if __name__ == "__main__":
    main()
