#!/usr/bin/python3
"""Oracles for the model zoo (tests/test_models_oracle.c), and interop checks.

    make_model_oracles.py                      write tests/fixtures/models/*.json
    make_model_oracles.py --check-load SPEC FILE [--seed S | --reference REF]
    make_model_oracles.py --export-torch SPEC OUT

The architectures are rebuilt here in PyTorch 1.13 from seed-spec §2 and §3
(no timm, no kuangliu code), with the same state-dict names as those
projects. No weights are stored: both sides generate them. This script
replays budgie's Philox-4x32-10 stream (engine/philox.h) and its fills
(engine/tensor.c: element i takes word i%4 of block i/4; normals by
Box-Muller on words (0,1) and (2,3)), drawing in state-dict order exactly as
models/layers.c initialises: conv weights Kaiming-normal fan_out drawn in
budgie's OHWI layout then transposed to OIHW, conv biases and Linear
U(+-1/sqrt(fan_in)) (a Linear over a flattened HxW map is drawn with budgie's
(h,w,c) columns and permuted to PyTorch's (c,h,w)), BN gamma 1 (0 for
ResNeSt's bn3), beta 0. The oracle then redraws every BN gamma U(0.5, 1.5)
and beta U(-0.5, 0.5), in the same order (so no gradient is trivially zero:
ResNeSt's zero bn3 would zero every branch gradient), draws the input
N(0,1) in NHWC, and runs one train-mode forward (batch statistics) and
backward of the mean cross-entropy in float64. It stores the logits, the
loss, per parameter the gradient's L2 norm and a dozen sampled gradient
elements (flat PyTorch-layout indices), a few initial weight values (to
check budgie's PyTorch-layout export) and sampled running statistics after
the forward. A few hundred KB in all.

Each oracle also says how far a float32 or float16 implementation may
honestly be from it (see "Precision" below): per parameter the ReLU flip
slack (float32), and PyTorch's own errors in float32 and in budgie's float16
storage regime, measured with the test's metrics.

--check-load loads a budgie-written safetensors file with load_state_dict
(strict=True) into the PyTorch twin and compares every tensor with the
Philox weights for --seed (budgie model save SPEC FILE --seed S) or with the
tensors of REF. --export-torch writes a state dict initialised by PyTorch
itself (after one train-mode step of the BN statistics; num_batches_tracked
is I64 1) for budgie to load. safetensors is read and written by hand (the
format is an 8-byte header length, a JSON header, raw little-endian data).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------- Philox

M32 = np.uint64(0xFFFFFFFF)


def philox_blocks(seed, offset, n):
    """Blocks offset .. offset+n-1 of key `seed`: array (n, 4) of uint32."""
    c = np.arange(n, dtype=np.uint64) + np.uint64(offset)
    x0, x1 = c & M32, c >> np.uint64(32)
    x2 = np.zeros(n, dtype=np.uint64)
    x3 = np.zeros(n, dtype=np.uint64)
    k0, k1 = seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * x0
        p1 = np.uint64(0xCD9E8D57) * x2
        hi0, lo0 = p0 >> np.uint64(32), p0 & M32
        hi1, lo1 = p1 >> np.uint64(32), p1 & M32
        x0, x1, x2, x3 = hi1 ^ x1 ^ np.uint64(k0), lo1, hi0 ^ x3 ^ np.uint64(k1), lo0
        k0 = (k0 + 0x9E3779B9) & 0xFFFFFFFF
        k1 = (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return np.stack([x0, x1, x2, x3], axis=1).astype(np.uint32)


class Stream:
    """The context's Philox stream: each fill takes ceil(n/4) fresh blocks."""

    def __init__(self, seed):
        self.seed, self.offset = seed, 0

    def _take(self, n):
        nb = (n + 3) // 4
        w = philox_blocks(self.seed, self.offset, nb)
        self.offset += nb
        return w

    def uniform(self, shape, lo, hi):
        n = int(np.prod(shape))
        u = (self._take(n).reshape(-1)[:n] >> 8).astype(np.float64) * (1.0 / 16777216.0)
        return (lo + (hi - lo) * u).astype(np.float32).reshape(shape)

    def normal(self, shape, mean, std):
        n = int(np.prod(shape))
        w = self._take(n)
        u1 = ((w[:, 0::2] >> 8).astype(np.float64) + 1.0) * (1.0 / 16777216.0)
        u2 = (w[:, 1::2] >> 8).astype(np.float64) * (1.0 / 16777216.0)
        rad = np.sqrt(-2.0 * np.log(u1))
        a = mean + std * rad * np.cos(2.0 * math.pi * u2)
        b = mean + std * rad * np.sin(2.0 * math.pi * u2)
        v = np.stack([a[:, 0], b[:, 0], a[:, 1], b[:, 1]], axis=1).reshape(-1)[:n]
        return v.astype(np.float32).reshape(shape)


# ---------------------------------------------------------------- models

def conv(cin, cout, k, stride=1, pad=0, groups=1, bias=False):
    return nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=bias)


class PreActBlock(nn.Module):
    """§2.1 / §2.3: the shortcut conv acts on relu(bn1(x)); identity is x itself."""

    def __init__(self, cin, cout, stride, se):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = conv(cin, cout, 3, stride, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = conv(cout, cout, 3, 1, 1)
        self.proj = stride != 1 or cin != cout
        if self.proj:
            self.shortcut = nn.Sequential(conv(cin, cout, 1, stride))
        self.se = se
        if se:
            self.fc1 = conv(cout, cout // 16, 1, bias=True)
            self.fc2 = conv(cout // 16, cout, 1, bias=True)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        sc = self.shortcut(a) if self.proj else x
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        if self.se:
            s = F.avg_pool2d(out, out.size(2))
            out = out * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return out + sc


class BasicBlock(nn.Module):
    """§2.2: post-activation, conv1x1+BN projection shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv(cin, cout, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = conv(cout, cout, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = stride != 1 or cin != cout
        if self.proj:
            self.shortcut = nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (self.shortcut(x) if self.proj else x))


class CifarResNet(nn.Module):
    """§1.3 scaling: SENet/preact widths int(round(c*w)), ResNet 8*floor(c*w/8);
    round(2d) blocks per stage; input int(32r); avg_pool2d(4) head."""

    def __init__(self, variant, w=1.0, d=1.0, r=1.0, classes=10):
        super().__init__()
        self.variant = variant
        if variant == "resnet18":
            width = lambda c: 8 * math.floor(c * w / 8)
        else:
            width = lambda c: int(round(c * w))
        nb = int(round(2 * d))
        side = int(32 * r)
        stem = width(64)
        self.conv1 = conv(3, stem, 3, 1, 1)
        if variant != "preact_resnet18":
            self.bn1 = nn.BatchNorm2d(stem)
        cin, hw = stem, side
        for i, (base, stride) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
            blocks = []
            for j in range(nb):
                s = stride if j == 0 else 1
                if variant == "resnet18":
                    blocks.append(BasicBlock(cin, width(base), s))
                else:
                    blocks.append(PreActBlock(cin, width(base), s, variant == "senet18"))
                cin = width(base)
                hw = (hw - 1) // s + 1
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
        self.pool_hw = (hw - 4) // 4 + 1
        self.linear = nn.Linear(cin * self.pool_hw ** 2, classes)

    def forward(self, x):
        out = self.conv1(x)
        if self.variant != "preact_resnet18":
            out = F.relu(self.bn1(out))
        for i in range(1, 5):
            out = getattr(self, "layer%d" % i)(out)
        out = F.avg_pool2d(out, 4)
        return self.linear(out.flatten(1))


class MBBlock(nn.Module):
    def __init__(self, cin, cout, t, stride):
        super().__init__()
        mid = t * cin
        self.stride = stride
        self.conv1 = conv(cin, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = conv(mid, mid, 3, stride, 1, groups=mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = conv(mid, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout)
        self.proj = stride == 1 and cin != cout
        if self.proj:
            self.shortcut = nn.Sequential(conv(cin, cout, 1), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 1:
            out = out + (self.shortcut(x) if self.proj else x)
        return out


class MobileNetV2(nn.Module):
    CFG = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, r=1.0, classes=10):
        super().__init__()
        hw = int(32 * r)
        self.conv1 = conv(3, 32, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(32)
        blocks, cin = [], 32
        for t, cout, n, stride in self.CFG:
            for j in range(n):
                s = stride if j == 0 else 1
                blocks.append(MBBlock(cin, cout, t, s))
                cin = cout
                hw = (hw - 1) // s + 1
        self.layers = nn.Sequential(*blocks)
        self.conv2 = conv(320, 1280, 1)
        self.bn2 = nn.BatchNorm2d(1280)
        self.pool_hw = (hw - 4) // 4 + 1
        self.linear = nn.Linear(1280 * self.pool_hw ** 2, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(self.layers(out))))
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


def make_divisible(v, divisor=8, min_value=32):
    nv = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return nv + divisor if nv < 0.9 * v else nv


class SplitAttn(nn.Module):
    """§3.3: grouped 3x3 conv to r splits, attention from their sum."""

    def __init__(self, gw, radix, card, stride):
        super().__init__()
        self.radix, self.card = radix, card
        attn = make_divisible(gw * radix * 0.25)
        self.conv = conv(gw, gw * radix, 3, stride, 1, groups=card * radix)
        self.bn0 = nn.BatchNorm2d(gw * radix)
        self.fc1 = conv(gw, attn, 1, groups=card, bias=True)
        self.bn1 = nn.BatchNorm2d(attn)
        self.fc2 = conv(attn, gw * radix, 1, groups=card, bias=True)

    def forward(self, x):
        x = F.relu(self.bn0(self.conv(x)))
        B, RC, H, W = x.shape
        r = self.radix
        xs = x.reshape(B, r, RC // r, H, W) if r > 1 else None
        gap = (xs.sum(1) if r > 1 else x).mean((2, 3), keepdim=True)
        a = self.fc2(F.relu(self.bn1(self.fc1(gap))))
        if r > 1:
            a = F.softmax(a.view(B, self.card, r, -1).transpose(1, 2), dim=1).reshape(B, -1)
            return (xs * a.reshape(B, r, RC // r, 1, 1)).sum(1)
        return x * torch.sigmoid(a)


class ResNestBottleneck(nn.Module):
    def __init__(self, cin, planes, stride, radix, card, base_width, avd_first, down):
        super().__init__()
        gw = int(planes * (base_width / 64.0)) * card
        self.avd_stride = stride if stride > 1 else 0
        self.avd_first = avd_first
        self.conv1 = conv(cin, gw, 1)
        self.bn1 = nn.BatchNorm2d(gw)
        self.conv2 = SplitAttn(gw, radix, card, 1 if self.avd_stride else stride)
        self.conv3 = conv(gw, planes * 4, 1)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.bn3.zero_init = True
        self.downsample = None
        if down:
            pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
            self.downsample = nn.Sequential(pool, conv(cin, planes * 4, 1), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        if self.avd_stride and self.avd_first:
            out = F.avg_pool2d(out, 3, self.avd_stride, 1)
        out = self.conv2(out)
        if self.avd_stride and not self.avd_first:
            out = F.avg_pool2d(out, 3, self.avd_stride, 1)
        out = self.bn3(self.conv3(out))
        sc = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + sc)


class ResNeSt(nn.Module):
    """§3.2: deep stem, avg_down shortcuts, global pool, Linear."""

    def __init__(self, layers, radix, card, base_width, avd_first, classes=1000):
        super().__init__()
        self.conv1 = nn.Sequential(conv(3, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
                                   conv(32, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.ReLU(), conv(32, 64, 3, 1, 1))
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, n in enumerate(layers):
            planes = 64 << i
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(ResNestBottleneck(cin, planes, stride, radix, card, base_width, avd_first, j == 0))
                cin = planes * 4
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
        self.pool_hw = 1
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for i in range(1, 5):
            x = getattr(self, "layer%d" % i)(x)
        return self.fc(x.mean((2, 3)))


def parse_spec(spec):
    name, _, rest = spec.partition(":")
    kv = {}
    for tok in filter(None, rest.split(",")):
        k, _, v = tok.partition("=")
        kv[k] = float(v)
    return name, kv


def build(spec):
    name, kv = parse_spec(spec)
    if name in ("senet18", "resnet18", "preact_resnet18"):
        return CifarResNet(name, kv.get("w", 1), kv.get("d", 1), kv.get("r", 1), int(kv.get("classes", 10)))
    if name == "mobilenetv2":
        return MobileNetV2(kv.get("r", 1), int(kv.get("classes", 10)))
    cfgs = {"resnest50d_1s4x24d": ([3, 4, 6, 3], 1, 4, 24, True), "resnest50d": ([3, 4, 6, 3], 2, 1, 64, False),
            "resnest26d": ([2, 2, 2, 2], 2, 1, 64, False)}
    if name in cfgs:
        return ResNeSt(*cfgs[name], classes=int(kv.get("classes", 1000)))
    sys.exit("unknown model " + name)


# ---------------------------------------------------------------- budgie's init

def linear_to_torch(w, hw):
    """(out, h*w*c) columns in budgie's order -> PyTorch's (c, h, w)."""
    out, n = w.shape
    c = n // (hw * hw)
    return w.reshape(out, hw * hw, c).transpose(0, 2, 1).reshape(out, n)


@torch.no_grad()
def init_like_budgie(model, stream):
    """Every draw in state-dict order, as models/layers.c does."""
    for _, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):
            o, i, kh, kw = mod.weight.shape
            wt = stream.normal((o, kh, kw, i), 0.0, math.sqrt(2.0 / (o * kh * kw)))
            mod.weight.copy_(torch.from_numpy(wt.transpose(0, 3, 1, 2).copy()))
            if mod.bias is not None:
                b = 1.0 / math.sqrt(i * kh * kw)
                mod.bias.copy_(torch.from_numpy(stream.uniform((o,), -b, b)))
        elif isinstance(mod, nn.BatchNorm2d):
            mod.weight.fill_(0.0 if getattr(mod, "zero_init", False) else 1.0)
            mod.bias.zero_()
        elif isinstance(mod, nn.Linear):
            o, i = mod.weight.shape
            b = 1.0 / math.sqrt(i)
            wt = stream.uniform((o, i), -b, b)
            mod.weight.copy_(torch.from_numpy(linear_to_torch(wt, model.pool_hw)))
            mod.bias.copy_(torch.from_numpy(stream.uniform((o,), -b, b)))


@torch.no_grad()
def perturb_bn(model, stream):
    """The oracle's non-trivial BN affine parameters (tests/test_models_oracle.c does the same)."""
    for _, mod in model.named_modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.weight.copy_(torch.from_numpy(stream.uniform(tuple(mod.weight.shape), 0.5, 1.5)))
            mod.bias.copy_(torch.from_numpy(stream.uniform(tuple(mod.bias.shape), -0.5, 0.5)))


# ---------------------------------------------------------------- oracles

ORACLES = [
    # (file stem, spec, input side, batch). ResNeSt runs at batch 4: its
    # attention BN normalises one value per image and channel, and with two
    # images that is ill-conditioned (x_hat = +-d/sqrt(d^2 + 4 eps) for the
    # pair's difference d): PyTorch's own float32 then misses its float64 by
    # ~1e-3 in the logits, budgie's too; at batch 4 both are ~3e-5.
    ("senet18_w067_r2", "senet18:w=0.67,r=2", 64, 2),
    ("resnet18_r2", "resnet18:r=2", 64, 2),
    ("resnest50d_1s4x24d", "resnest50d_1s4x24d:classes=10", 64, 4),
]
SEED, LABELS = 20240611, [3, 8, 1, 5]


def samples(n, k, salt):
    rng = np.random.RandomState(1000 + salt)
    return sorted(rng.choice(n, size=min(n, k), replace=False).tolist())


# ---------------------------------------------------------------- precision
#
# Float32. A ReLU input within float32 rounding of zero may come out on the
# other side of zero in any float32 implementation; its derivative then
# flips, and that moves the parameter gradients by a finite amount, however
# small the input was. Flipping element i (input x_i, output gradient
# g_i = dL/d relu(x)_i) changes the gradient flowing into x_i by +-g_i and
# nothing else in the backward (which is linear in the incoming gradient for
# a fixed forward), so every parameter gradient moves by
#     Delta_i = +- d(g_i x_i)/d params,   g_i held constant,
# one vector-Jacobian product per flagged element. The forward moves by
# |x_i| < tau only. The slack stored per parameter bounds any subset of the
# flagged elements flipping (triangle inequality): for the norm check the L2
# norm of sum_i |Delta_i| (elementwise), for each sampled element its own
# sum_i |Delta_i|. (Exact for one flip; when two flip and one lies upstream
# of the other, the upstream g_j also moves by the other's flip, a product
# of two single-element effects, which this leaves out: a few flips among
# millions of inputs make that negligible.)
#
# TAU: the ReLU inputs are batchnorm outputs (or residual sums of them) of
# order 1, each a float32 dot product of up to K = 9*512 terms followed by a
# BN (or the SE gate's small fc1). The rounding (unit 6e-8, growing like
# sqrt(K) and with depth) puts PyTorch's own float32 forward, measured
# against float64 at every ReLU input, at an RMS error per ReLU of 1e-7
# (stem) to 1.4e-6 (SENet's last stage; 2.9e-6 for ResNet-18's, 4.5e-6 at
# SENet's 4-input SE gates), at most 1.05e-5 / 1.8e-5 over the 3.3M / 4.5M
# inputs (stored per oracle as "f32_relu_err"). With a Gaussian error of
# that RMS per ReLU and the inputs' density near zero, the expected number
# of flips outside tau = 1e-5 is 1e-14 (SENet) / 2e-5 (ResNet-18), and 1e-5
# / 1e-2 with twice that RMS, against 0.9 / 1.7 expected inside it: tau is
# where flips stop being plausible, no wider. budgie's flips were at 2.2e-6
# and 3.3e-7. ResNeSt's attention BN amplifies the rounding of its deeper
# stages to an RMS of 1e-4 there, so some of its flips lie outside tau; its
# own wider f32 gradient limit in the test covers those.
#
# Float16. budgie's f16 graph stores every activation, every activation
# gradient, the parameters and their gradients in binary16 and computes in
# float32, with the batchnorm batch statistics and the loss in float32
# (ops/batchnorm.c, ops/loss.c); the running statistics are binary16 like
# every other state-dict tensor (bg_model_to in models/model.c). F16Storage replays that in PyTorch: float32 compute,
# each op's result rounded to binary16 on the way forward and the gradient
# reaching it rounded on the way back (Round16), the loss left alone. Its
# errors against float64, in the test's metrics, are the yardstick for
# budgie's own f16 errors ("torch_f16").

TAU = 1e-5


class ReluTap:
    """While active, every F.relu call (nn.ReLU's too) records (input, output)."""

    def __enter__(self):
        self.relu, self.taps = F.relu, []
        F.relu = self._relu
        return self

    def __exit__(self, *exc):
        F.relu = self.relu

    def _relu(self, x, inplace=False):
        y = self.relu(x, inplace=inplace)
        self.taps.append((x, y))
        return y


def relu_flip_slack(params, taps, gouts, tau):
    """Per parameter sum_i |d(g_i x_i)/d param| over the ReLU inputs |x_i| < tau; the count."""
    acc = [torch.zeros_like(p) for p in params]
    flagged = 0
    for (x, _), g in zip(taps, gouts):
        xf, gf = x.reshape(-1), g.reshape(-1)
        for i in torch.nonzero(xf.abs() < tau).reshape(-1).tolist():
            d = torch.autograd.grad(xf[i], params, retain_graph=True, allow_unused=True)
            for a, di in zip(acc, d):
                if di is not None:
                    a += (gf[i] * di).abs()
            flagged += 1
    return acc, flagged


class Round16(torch.autograd.Function):
    """Identity, with the value and its incoming gradient stored as binary16."""

    @staticmethod
    def forward(ctx, x):
        return x.half().float()

    @staticmethod
    def backward(ctx, g):
        return g.half().float()


class F16Storage(torch.Tensor):
    """A float32 tensor whose every op result goes through Round16 (the loss excepted)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        with torch._C.DisableTorchFunction():
            out = func(*args, **(kwargs or {}))
            if func is F.cross_entropy or not isinstance(out, torch.Tensor) or not out.is_floating_point():
                return out
            out = Round16.apply(out)
        return out.as_subclass(cls)


def oracle_errors(doc, logits, loss, grads, buffers, slack):
    """The errors tests/test_models_oracle.c measures, computed the same way.
    grads/buffers: name -> tensor (PyTorch layout); slack: subtract the flip slack."""
    want = np.array(doc["logits"])
    got = logits.detach().double().reshape(-1).numpy()
    e = {"logits": float(np.abs(got - want).max() / np.abs(want).max()),
         "loss": abs(float(loss) - doc["loss"]) / abs(doc["loss"]), "grad_norm": 0.0, "grad_samples": 0.0,
         "stats": 0.0}
    gmax = max(p["grad_norm"] for p in doc["params"])
    for p in doc["params"]:
        g = grads[p["name"]].detach().double().reshape(-1).numpy()
        scale = max(p["grad_norm"], 1e-3 * gmax)
        dn = abs(float(np.linalg.norm(g)) - p["grad_norm"])
        if slack:
            dn = max(0.0, dn - p.get("flip_norm", 0.0))
        e["grad_norm"] = max(e["grad_norm"], dn / scale)
        idx, ref = p["idx"], np.array(p["grad"])
        de = float(np.linalg.norm(g[idx] - ref))
        if slack:
            de = max(0.0, de - float(np.linalg.norm(p.get("flip", [0.0]))))
        e["grad_samples"] = max(e["grad_samples"],
                                de / max(float(np.linalg.norm(ref)), scale * math.sqrt(len(idx) / g.size) * 1e-1))
    for b in doc["buffers"]:
        v = buffers[b["name"]].detach().double().reshape(-1).numpy()
        ref = np.array(b["value"])
        e["stats"] = max(e["stats"], float(np.linalg.norm(v[b["idx"]] - ref)) / max(float(np.linalg.norm(ref)), 1e-30))
    return {k: float("%.3g" % v) for k, v in e.items()}


def run_low(model, x, y, half):
    """One train-mode forward/backward of a float32 model in float32, or in
    budgie's f16 storage regime (half): -> logits, loss, {name: grad},
    {name: buffer}, the ReLU taps (float32 only)."""
    taps = []
    if half:
        with torch.no_grad():
            for t in list(model.parameters()) + list(model.buffers()):
                if t.is_floating_point():
                    t.copy_(t.half().float())
        logits = model(x.half().float().as_subclass(F16Storage))
    else:
        with ReluTap() as tap:
            logits = model(x)
        taps = tap.taps
    loss = F.cross_entropy(logits, y)
    loss.backward()
    r16 = (lambda t: t.half().float()) if half else (lambda t: t)
    grads = {n: r16(p.grad) for n, p in model.named_parameters()}
    bufs = {n: r16(b) for n, b in model.named_buffers() if b.is_floating_point()}
    return logits.as_subclass(torch.Tensor), loss.as_subclass(torch.Tensor), grads, bufs, taps


def make_oracle(stem, spec, side, batch, outdir):
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = build(spec)
    stream = Stream(SEED)
    init_like_budgie(model, stream)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    perturb_bn(model, stream)
    state32 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    x = stream.normal((batch, side, side, 3), 0.0, 1.0)  # NHWC, as budgie draws it
    model = model.double().train()
    x32 = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    xt = x32.double()
    y = torch.tensor(LABELS[:batch], dtype=torch.long)
    with ReluTap() as tap:
        logits = model(xt)
    loss = F.cross_entropy(logits, y)
    gouts = torch.autograd.grad(loss, [o for _, o in tap.taps], retain_graph=True)
    loss.backward(retain_graph=True)
    flip, flagged = relu_flip_slack(list(model.parameters()), tap.taps, gouts, TAU)
    params = []
    for i, (name, p) in enumerate(model.named_parameters()):
        g = p.grad.detach().reshape(-1).numpy()
        idx = samples(g.size, 12, i)
        w = (init[name] if name in init else p).detach().reshape(-1).double().numpy()
        pw = p.detach().reshape(-1).numpy()
        widx = samples(g.size, 4, 500 + i)
        e = {"name": name, "shape": list(p.shape), "grad_norm": float(np.linalg.norm(g)),
             "idx": idx, "grad": [float(g[j]) for j in idx],
             "value_idx": widx, "init": [float(w[j]) for j in widx], "value": [float(pw[j]) for j in widx]}
        a = flip[i].reshape(-1).numpy()
        if a.any():  # 4 digits, rounded up: a bound stays a bound
            up = lambda v: float("%.3e" % (v * (1 + 1e-3)))
            e["flip_norm"] = up(float(np.linalg.norm(a)))
            e["flip"] = [up(float(a[j])) for j in idx]
        params.append(e)
    buffers = []
    for i, (name, b) in enumerate(model.named_buffers()):
        if name.endswith("num_batches_tracked"):
            continue
        v = b.detach().reshape(-1).numpy()
        idx = samples(v.size, 4, 2000 + i)
        buffers.append({"name": name, "idx": idx, "value": [float(v[j]) for j in idx]})
    doc = {
        "spec": spec, "seed": SEED, "batch": batch, "input": [batch, side, side, 3], "labels": LABELS[:batch],
        "how": "budgie Philox init in state-dict order, then BN gamma U(0.5,1.5) and beta U(-0.5,0.5) in the same "
               "order, then the input N(0,1) NHWC; one train-mode forward/backward of the mean cross-entropy in "
               "float64 (PyTorch %s); written by tools/make_model_oracles.py" % torch.__version__,
        "logits": logits.detach().reshape(-1).tolist(), "loss": float(loss), "params": params, "buffers": buffers,
    }
    # PyTorch's own float32, and float16 as budgie stores it, against the float64 above
    twins = []
    for half in (False, True):
        twin = build(spec)
        twin.load_state_dict(state32)
        twins.append(run_low(twin.float().train(), x32, y, half))
    relu_err = [(a.detach() - b.detach().double()).reshape(-1) for (a, _), (b, _) in zip(tap.taps, twins[0][4])]
    doc["flip"] = {
        "how": "float32 slack per parameter: flip_norm = |sum_i |Delta_i||_2, flip[k] = sum_i |Delta_i[idx[k]]|, "
               "over the ReLU inputs |x_i| < tau of the float64 forward, Delta_i = d(g_i x_i)/d params with "
               "g_i = dL/d relu_out_i held constant (the gradient change if that ReLU's derivative flips); "
               "f32_relu_err: PyTorch's own float32 ReLU inputs against float64, the largest error and the "
               "largest per-ReLU RMS error",
        "tau": TAU, "flagged": flagged, "relu_inputs": int(sum(t.numel() for t, _ in tap.taps)),
        "f32_relu_err": {"max": float("%.3g" % max(float(r.abs().max()) for r in relu_err)),
                         "worst_rms": float("%.3g" % max(float(r.pow(2).mean().sqrt()) for r in relu_err))},
    }
    # torch_f32: after the flip slack, as the test's f32 limits see it, and before it (_raw)
    doc["torch_f32"] = oracle_errors(doc, *twins[0][:4], slack=True)
    raw = oracle_errors(doc, *twins[0][:4], slack=False)
    doc["torch_f32"].update(grad_norm_raw=raw["grad_norm"], grad_samples_raw=raw["grad_samples"])
    doc["torch_f16"] = oracle_errors(doc, *twins[1][:4], slack=False)
    doc["torch_f16"]["how"] = ("PyTorch float32 compute, every op result and every activation gradient rounded to "
                               "binary16, parameters, input, parameter gradients and running statistics binary16, "
                               "batchnorm statistics and the loss float32 (budgie's f16 graph); errors against the "
                               "float64 above in tests/test_models_oracle.c's metrics")
    path = os.path.join(outdir, stem + ".json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print("%s: %s, %d params, loss %.6f, %d bytes" % (path, spec, len(params), float(loss), os.path.getsize(path)))
    print("  flip slack: tau %g, %d of %d ReLU inputs flagged; PyTorch f32 ReLU inputs off by <= %g (RMS <= %g)" %
          (TAU, flagged, doc["flip"]["relu_inputs"], doc["flip"]["f32_relu_err"]["max"],
           doc["flip"]["f32_relu_err"]["worst_rms"]))
    worst = sorted(((e.get("flip_norm", 0.0) / max(e["grad_norm"], 1e-3 * max(q["grad_norm"] for q in params)),
                     e["name"]) for e in params), reverse=True)[:3]
    print("  largest slack / scale: %s" % ", ".join("%s %.3g" % (n, v) for v, n in worst))
    for k in ("torch_f32", "torch_f16"):
        print("  %s: %s" % (k, {a: b for a, b in doc[k].items() if a != "how"}))


# ---------------------------------------------------------------- safetensors by hand

ST_NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def st_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    data, out = raw[8 + n:], {}
    for k, e in hdr.items():
        a, b = e["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=ST_NP[e["dtype"]]).reshape(e["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out


def st_write(path, tensors):
    names = {np.float32: "F32", np.float64: "F64", np.int64: "I64", np.int32: "I32"}
    hdr, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy())
        b = a.tobytes()
        hdr[k] = {"dtype": names[a.dtype.type], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def check_load(spec, path, seed, reference):
    model = build(spec)
    res = model.load_state_dict(st_read(path), strict=True)
    print("load_state_dict(strict=True): %s" % (res,))
    if reference:
        want = st_read(reference)
    else:
        twin = build(spec)
        init_like_budgie(twin, Stream(seed))
        want = twin.state_dict()
    worst, worst_name = 0.0, ""
    for k, v in model.state_dict().items():
        if v.dtype != want[k].dtype and not k.endswith("num_batches_tracked"):
            sys.exit("%s: dtype %s, want %s" % (k, v.dtype, want[k].dtype))
        d = float((v.double() - want[k].double()).abs().max()) if v.numel() else 0.0
        scale = max(1e-30, float(want[k].double().abs().max())) if v.numel() else 1.0
        if d / scale > worst:
            worst, worst_name = d / scale, k
    print("%d tensors; num_batches_tracked dtype %s; max relative difference %.3g (%s)" %
          (len(want), [v.dtype for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")][:1],
           worst, worst_name or "-"))
    # Philox normals go through numpy's cos/sin here and glibc's there: the
    # last float32 bit may differ, nothing more.
    return 0 if worst <= (0.0 if reference else 1e-6) else 1


def export_torch(spec, out):
    torch.manual_seed(0)
    model = build(spec).train()
    side = 224 if spec.startswith("resnest") else int(32 * parse_spec(spec)[1].get("r", 1))
    with torch.no_grad():
        model(torch.randn(2, 3, side, side))  # running stats and num_batches_tracked move off their defaults
    st_write(out, model.state_dict())
    print("wrote %s: %d tensors (PyTorch init, one BN update, num_batches_tracked I64)" % (out, len(model.state_dict())))
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "--check-load":
        seed, ref = 0, None
        if "--seed" in argv:
            seed = int(argv[argv.index("--seed") + 1])
        if "--reference" in argv:
            ref = argv[argv.index("--reference") + 1]
        return check_load(argv[1], argv[2], seed, ref)
    if len(argv) == 3 and argv[0] == "--export-torch":
        return export_torch(argv[1], argv[2])
    if argv:
        print(__doc__)
        return 2
    outdir = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "models"))
    os.makedirs(outdir, exist_ok=True)
    for stem, spec, side, batch in ORACLES:
        make_oracle(stem, spec, side, batch, outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
