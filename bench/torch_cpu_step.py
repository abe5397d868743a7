#!/usr/bin/env python3
"""PyTorch's side of bench/cpu_step.sh: images/s and peak resident memory of
a CPU training step (forward, cross-entropy, backward, SGD momentum 0.9 with
weight decay 5e-4, loss read-back) of the same zoo model budgie builds, taken
from tools/make_model_oracles.py (the model oracles' PyTorch twins of
budgie's spec strings). Random inputs, labels i mod classes. Prints one line
in the format of `budgie bench cpu_step`.

usage: torch_cpu_step.py MODEL_SPEC BATCH THREADS [STEPS] [WARMUP] [channels_last]
"""
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    spec, batch, threads = argv[1], int(argv[2]), int(argv[3])
    steps = int(argv[4]) if len(argv) > 4 else 5
    warmup = int(argv[5]) if len(argv) > 5 else 2
    channels_last = len(argv) > 6 and argv[6] == "channels_last"
    import torch
    import torch.nn.functional as F
    from make_model_oracles import build
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = rss_mib()
    model = build(spec)
    model.train()
    side = 32 if spec.split(":")[0] in ("senet18", "resnet18", "preact_resnet18", "mobilenetv2", "small_cnn") else 224
    for tok in spec.partition(":")[2].split(","):
        if tok.startswith("size="):
            side = int(tok[5:])
    classes = 10
    for tok in spec.partition(":")[2].split(","):
        if tok.startswith("classes="):
            classes = int(tok[8:])
    x = torch.rand(batch, 3, side, side) * 4 - 2
    y = torch.arange(batch) % classes
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    dt = time.perf_counter() - t0
    print("torch model=%s batch=%d threads=%d kernels=torch-%s%s steps=%d img_s=%.2f ms_step=%.1f "
          "peak_rss_mib=%.0f base_rss_mib=%.0f loss=%.4f"
          % (spec, batch, torch.get_num_threads(), torch.__version__, "/channels_last" if channels_last else "",
             steps, batch * steps / dt, dt * 1e3 / steps, rss_mib(), base, loss))


if __name__ == "__main__":
    main(sys.argv)
