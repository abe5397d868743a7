#!/usr/bin/python3
"""Write the op reference fixtures: tests/fixtures/ops/<case>.safetensors.

Run with Debian's /usr/bin/python3 (PyTorch 1.13 is installed there). Each
file describes one op call in the format `budgie validate` reads (see
docs/validate-format.md): metadata op/params/train/layout, the inputs under
the op's input names, expected outputs out.<output>, upstream gradients
dout.<output> and expected input gradients grad.<input>.

Inputs are drawn in float64 with a fixed seed and rounded to float32 first, so
the stored inputs are exactly what the reference saw; the reference then
computes in float64 and the results are stored as float32. Most files use
PyTorch's NCHW layout (budgie permutes every 4-D tensor on load); the
flatten and reshape files are NHWC because those ops' element order depends
on the layout, so the reference permutes to NHWC before flattening.

The safetensors writer is done by hand (struct + json) so that only torch is
needed; when the `safetensors` package is importable every file is read back
with its loader and compared as a cross-check.
"""
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "ops")
SEED = 20240611

# The op table's input/output names (ops/*.c rows); validate files must use them.
BN_IN = ("x", "gamma", "beta", "running_mean", "running_var")
CONCAT_IN = ("x0", "x1", "x2", "x3", "x4", "x5")

ST_DTYPE = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32"}


def write_safetensors(path, tensors, meta):
    """tensors: list of (name, tensor) in data order; meta: dict str -> str."""
    header = {"__metadata__": meta} if meta else {}
    blobs = []
    offset = 0
    for name, t in tensors:
        t = t.detach().contiguous().cpu()
        raw = t.numpy().tobytes()  # numpy is little-endian on every host we target
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the reference pads the header to 8 bytes
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    return 8 + len(text) + offset


class Gen:
    """Deterministic draws: float64 rounded through float32 (what the file holds)."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, *shape, scale=1.0):
        return (torch.randn(*shape, generator=self.g, dtype=torch.float64) * scale).float().double()

    def positive(self, *shape):
        return (torch.rand(*shape, generator=self.g, dtype=torch.float64) + 0.5).float().double()

    def labels(self, n, k):
        return torch.randint(0, k, (n,), generator=self.g, dtype=torch.int64)


def f32(t):
    return t.detach().float()


def case_file(name, op, params, inputs, outputs, train=True, layout="NCHW", extra_out=None,
              grads=True, gen=None):
    """Run the reference backward too: inputs = [(name, tensor, differentiable)],
    outputs = function of the input tensors returning {out_name: tensor}."""
    leaves = []
    for nm, t, diff in inputs:
        leaf = t.clone().requires_grad_(diff and grads)
        leaves.append((nm, leaf, diff))
    outs = outputs(*[leaf for _, leaf, _ in leaves])
    tensors = []
    for nm, leaf, _ in leaves:
        tensors.append((nm, f32(leaf) if leaf.dtype == torch.float64 else leaf.detach()))
    for nm, y in outs.items():
        tensors.append(("out." + nm, f32(y)))
    for nm, t in (extra_out or {}).items():
        tensors.append(("out." + nm, f32(t)))
    if grads:
        total = 0
        for nm, y in outs.items():
            dy = gen.normal(*y.shape)
            tensors.append(("dout." + nm, f32(dy)))
            total = total + (y * dy).sum()
        total.backward()
        for nm, leaf, diff in leaves:
            if diff:
                tensors.append(("grad." + nm, f32(leaf.grad)))
    meta = {"op": op, "params": json.dumps(params, sort_keys=True, separators=(",", ":")),
            "train": "1" if train else "0", "layout": layout, "torch": torch.__version__,
            "source": "tools/make_op_fixtures.py"}
    return name, tensors, meta


def build_cases():
    gen = Gen(SEED)
    cases = []

    # conv2d: PyTorch NCHW/OIHW; the loader permutes both to NHWC/OHWI.
    def conv(name, x, w, b, stride, padding, dilation, groups):
        params = {"stride": [stride, stride], "padding": [padding, padding],
                  "dilation": [dilation, dilation], "groups": groups}
        ins = [("x", x, True), ("weight", w, True)] + ([("bias", b, True)] if b is not None else [])
        fn = lambda *t: {"y": F.conv2d(t[0], t[1], t[2] if len(t) > 2 else None, stride, padding,
                                       dilation, groups)}
        return case_file(name, "conv2d", params, ins, fn, gen=gen)

    cases.append(conv("conv2d_3x3_s1_p1_bias", gen.normal(2, 4, 7, 7), gen.normal(6, 4, 3, 3, scale=0.3),
                      gen.normal(6), 1, 1, 1, 1))
    cases.append(conv("conv2d_3x3_s2_nobias", gen.normal(2, 4, 8, 8), gen.normal(6, 4, 3, 3, scale=0.3),
                      None, 2, 1, 1, 1))
    cases.append(conv("conv2d_groups4_dil2", gen.normal(2, 8, 9, 9), gen.normal(8, 2, 3, 3, scale=0.3),
                      gen.normal(8), 1, 2, 2, 4))
    cases.append(conv("conv2d_depthwise", gen.normal(2, 6, 7, 7), gen.normal(6, 1, 3, 3, scale=0.3),
                      gen.normal(6), 2, 1, 1, 6))

    # batchnorm2d: biased variance to normalise, unbiased for running_var.
    def bn(name, train):
        c = 6
        x = gen.normal(4, c, 5, 5) * 1.5 + 0.3
        gamma, beta = gen.positive(c), gen.normal(c)
        rm, rv = gen.normal(c, scale=0.2), gen.positive(c)
        rm_after, rv_after = rm.clone(), rv.clone()

        def fn(x_, g_, b_, rm_, rv_):
            return {"y": F.batch_norm(x_, rm_after, rv_after, g_, b_, training=train, momentum=0.1, eps=1e-5)}

        ins = [(BN_IN[0], x, True), (BN_IN[1], gamma, True), (BN_IN[2], beta, True),
               (BN_IN[3], rm, False), (BN_IN[4], rv, False)]
        extra = {BN_IN[3]: rm_after, BN_IN[4]: rv_after}
        return case_file(name, "batchnorm2d", {"momentum": 0.1, "eps": 1e-5}, ins, fn, train=train,
                         extra_out=extra, gen=gen)

    cases.append(bn("batchnorm2d_train", True))
    cases.append(bn("batchnorm2d_eval", False))

    cases.append(case_file("relu", "relu", {}, [("x", gen.normal(2, 3, 4, 5), True)],
                           lambda x: {"y": F.relu(x)}, gen=gen))
    cases.append(case_file("sigmoid", "sigmoid", {}, [("x", gen.normal(2, 3, 4, 5, scale=2.0), True)],
                           lambda x: {"y": torch.sigmoid(x)}, gen=gen))

    cases.append(case_file("add", "add", {}, [("a", gen.normal(2, 3, 4, 5), True),
                                                ("b", gen.normal(2, 3, 4, 5), True)],
                           lambda a, b: {"y": a + b}, gen=gen))
    cases.append(case_file("add_broadcast_channel", "add", {},
                           [("a", gen.normal(2, 3, 4, 5), True), ("b", gen.normal(2, 3, 1, 1), True)],
                           lambda a, b: {"y": a + b}, gen=gen))
    cases.append(case_file("mul", "mul", {}, [("a", gen.normal(2, 3, 4, 5), True),
                                                ("b", gen.normal(2, 3, 4, 5), True)],
                           lambda a, b: {"y": a * b}, gen=gen))
    # The SE gate: {N,C,1,1} in PyTorch, {N,1,1,C} once permuted.
    cases.append(case_file("mul_se_gate", "mul", {},
                           [("a", gen.normal(2, 6, 4, 4), True), ("b", gen.positive(2, 6, 1, 1), True)],
                           lambda a, b: {"y": a * b}, gen=gen))

    cases.append(case_file("global_avgpool", "global_avgpool", {}, [("x", gen.normal(2, 5, 4, 3), True)],
                           lambda x: {"y": F.adaptive_avg_pool2d(x, 1)}, gen=gen))

    def pool_params(k, s, p, ceil, incl):
        return {"kernel": [k, k], "stride": [s, s], "padding": [p, p], "ceil_mode": int(ceil),
                "count_include_pad": int(incl)}

    # ResNeSt's avg_down: 2x2 s2 ceil_mode, padding not counted, odd input.
    cases.append(case_file("avgpool2d_ceil_nopad", "avgpool2d", pool_params(2, 2, 0, True, False),
                           [("x", gen.normal(2, 3, 7, 7), True)],
                           lambda x: {"y": F.avg_pool2d(x, 2, 2, 0, ceil_mode=True, count_include_pad=False)},
                           gen=gen))
    cases.append(case_file("avgpool2d_3x3_s2_p1", "avgpool2d", pool_params(3, 2, 1, False, True),
                           [("x", gen.normal(2, 3, 8, 8), True)],
                           lambda x: {"y": F.avg_pool2d(x, 3, 2, 1, ceil_mode=False, count_include_pad=True)},
                           gen=gen))
    cases.append(case_file("avgpool2d_3x3_s2_p1_ceil_nopad", "avgpool2d", pool_params(3, 2, 1, True, False),
                           [("x", gen.normal(2, 3, 8, 8), True)],
                           lambda x: {"y": F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)},
                           gen=gen))
    cases.append(case_file("maxpool2d_3x3_s2_p1", "maxpool2d", pool_params(3, 2, 1, False, True),
                           [("x", gen.normal(2, 3, 9, 9), True)],
                           lambda x: {"y": F.max_pool2d(x, 3, 2, 1)}, gen=gen))

    cases.append(case_file("linear", "linear", {},
                           [("x", gen.normal(4, 10), True), ("weight", gen.normal(6, 10, scale=0.3), True),
                            ("bias", gen.normal(6), True)],
                           lambda x, w, b: {"y": F.linear(x, w, b)}, gen=gen))
    cases.append(case_file("linear_nobias", "linear", {},
                           [("x", gen.normal(3, 7), True), ("weight", gen.normal(5, 7, scale=0.3), True)],
                           lambda x, w: {"y": F.linear(x, w)}, gen=gen))

    # flatten/reshape: stored NHWC so the flatten order is budgie's.
    nhwc = gen.normal(2, 3, 4, 5).permute(0, 2, 3, 1).contiguous()
    cases.append(case_file("flatten_nhwc", "flatten", {"start_dim": 1}, [("x", nhwc, True)],
                           lambda x: {"y": torch.flatten(x, 1)}, layout="NHWC", gen=gen))
    pooled = gen.normal(2, 1, 1, 6)
    cases.append(case_file("reshape_pooled", "reshape", {"shape": [2, 6]}, [("x", pooled, True)],
                           lambda x: {"y": x.reshape(2, 6)}, layout="NHWC", gen=gen))
    nhwc2 = gen.normal(2, 4, 5, 3)
    cases.append(case_file("reshape_infer", "reshape", {"shape": [2, -1, 3]}, [("x", nhwc2, True)],
                           lambda x: {"y": x.reshape(2, -1, 3)}, layout="NHWC", gen=gen))

    # concat along channels (PyTorch dim 1 = budgie's last axis).
    cases.append(case_file("concat2", "concat", {},
                           [(CONCAT_IN[0], gen.normal(2, 3, 4, 4), True), (CONCAT_IN[1], gen.normal(2, 5, 4, 4), True)],
                           lambda a, b: {"y": torch.cat([a, b], 1)}, gen=gen))
    cases.append(case_file("concat3", "concat", {},
                           [(CONCAT_IN[0], gen.normal(2, 2, 3, 3), True), (CONCAT_IN[1], gen.normal(2, 1, 3, 3), True),
                            (CONCAT_IN[2], gen.normal(2, 4, 3, 3), True)],
                           lambda a, b, c: {"y": torch.cat([a, b, c], 1)}, gen=gen))

    # softmax cross-entropy, mean reduction; labels are int64 as PyTorch has them.
    for eps in (0.0, 0.1):
        logits, labels = gen.normal(5, 7, scale=2.0), gen.labels(5, 7)
        cases.append(case_file("softmax_xent_ls%s" % ("%g" % eps).replace(".", "p"), "softmax_xent", {"label_smoothing": eps},
                               [("logits", logits, True), ("labels", labels, False)],
                               lambda z, y, e=eps: {"loss": F.cross_entropy(z, y, label_smoothing=e).reshape(1)},
                               gen=gen))

    # timm's rSoftMax: view (B, card, radix, -1) -> transpose(1, 2) -> softmax
    # over radix -> reshape (B, -1); sigmoid when radix == 1.
    def rsoftmax(x, radix, card):
        b = x.shape[0]
        if radix > 1:
            return F.softmax(x.reshape(b, card, radix, -1).transpose(1, 2), dim=1).reshape(b, -1)
        return torch.sigmoid(x)

    for radix, card, rest in ((2, 1, 4), (1, 4, 2)):
        x = gen.normal(3, radix * card * rest, scale=1.5)
        cases.append(case_file("radix_softmax_r%d_c%d" % (radix, card), "radix_softmax",
                               {"radix": radix, "cardinality": card}, [("x", x, True)],
                               lambda x, r=radix, c=card: {"y": rsoftmax(x, r, c)}, gen=gen))
    # As SplitAttn calls it: the attention logits come from a 1x1 conv as
    # {B, C, 1, 1} and the result is viewed back to {B, C, 1, 1}.
    x = gen.normal(2, 2 * 2 * 3, 1, 1, scale=1.5)
    cases.append(case_file("radix_softmax_r2_c2_4d", "radix_softmax", {"radix": 2, "cardinality": 2},
                           [("x", x, True)], lambda x: {"y": rsoftmax(x, 2, 2).reshape(x.shape)}, gen=gen))
    # ResNeSt's sum over the radix splits: channel block i of x is split i.
    def split_sum(x, radix):
        return sum(torch.split(x, x.shape[1] // radix, dim=1))

    cases.append(case_file("split_sum_r2_4d", "split_sum", {"radix": 2}, [("x", gen.normal(2, 6, 4, 4), True)],
                           lambda x: {"y": split_sum(x, 2)}, gen=gen))
    cases.append(case_file("split_sum_r4_2d", "split_sum", {"radix": 4}, [("x", gen.normal(3, 20), True)],
                           lambda x: {"y": split_sum(x, 4)}, gen=gen))

    # ---- the fused rows: each against the unfused PyTorch expression ----
    # (appended last, so the draws of the files above do not change)
    c = 6
    x = gen.normal(4, c, 5, 5) * 1.5 + 0.3
    gamma, beta = gen.positive(c), gen.normal(c)
    rm, rv = gen.normal(c, scale=0.2), gen.positive(c)
    rm_after, rv_after = rm.clone(), rv.clone()
    cases.append(case_file(
        "batchnorm2d_relu_train", "batchnorm2d_relu", {"momentum": 0.1, "eps": 1e-5},
        [(BN_IN[0], x, True), (BN_IN[1], gamma, True), (BN_IN[2], beta, True), (BN_IN[3], rm, False),
         (BN_IN[4], rv, False)],
        lambda x_, g_, b_, rm_, rv_: {"y": F.relu(F.batch_norm(x_, rm_after, rv_after, g_, b_, training=True,
                                                               momentum=0.1, eps=1e-5))},
        extra_out={BN_IN[3]: rm_after, BN_IN[4]: rv_after}, gen=gen))
    for relu in (0, 1):
        cases.append(case_file(
            "se_scale_residual%s" % ("_relu" if relu else ""), "se_scale", {"relu": relu},
            [("x", gen.normal(2, 6, 4, 4), True), ("s", gen.positive(2, 6, 1, 1), True),
             ("residual", gen.normal(2, 6, 4, 4), True)],
            lambda x, s_, r, relu=relu: {"y": F.relu(x * s_ + r) if relu else x * s_ + r}, gen=gen))
    cases.append(case_file("split_attn_r2", "split_attn", {"radix": 2},
                           [("x", gen.normal(2, 6, 4, 4), True), ("a", gen.positive(2, 6, 1, 1), True)],
                           lambda x, a: {"y": split_sum(x * a, 2)}, gen=gen))
    conv_p = {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1}
    cases.append(case_file(
        "conv2d_fused_residual_relu", "conv2d_fused", dict(conv_p, act=1),
        [("x", gen.normal(2, 4, 6, 6), True), ("weight", gen.normal(5, 4, 3, 3, scale=0.3), True),
         ("bias", gen.normal(5), True), ("residual", gen.normal(2, 5, 6, 6), True)],
        lambda x, w, b, r: {"y": F.relu(F.conv2d(x, w, b, 1, 1) + r)}, gen=gen))
    # the SE excitation's second 1x1 conv: bias and sigmoid on a {N,C,1,1} map
    cases.append(case_file(
        "conv2d_fused_1x1_sigmoid", "conv2d_fused", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1],
                                                     "groups": 1, "act": 2},
        [("x", gen.normal(3, 4, 1, 1), True), ("weight", gen.normal(6, 4, 1, 1, scale=0.5), True),
         ("bias", gen.normal(6), True)],
        lambda x, w, b: {"y": torch.sigmoid(F.conv2d(x, w, b))}, gen=gen))
    return cases


def main():
    torch.set_grad_enabled(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    try:
        from safetensors.torch import load_file
    except ImportError:
        load_file = None
    total = 0
    for name, tensors, meta in build_cases():
        path = os.path.join(OUT_DIR, name + ".safetensors")
        size = write_safetensors(path, tensors, meta)
        total += size
        if load_file is not None:
            back = load_file(path)
            assert sorted(back) == sorted(n for n, _ in tensors), path
            for n, t in tensors:
                assert back[n].dtype == t.dtype and torch.equal(back[n], t), (path, n)
        print("wrote %s (%d bytes): %s" % (os.path.relpath(path), size, ", ".join(n for n, _ in tensors)))
    print("%d bytes in all%s" % (total, "; cross-checked with safetensors.torch.load_file"
                                  if load_file is not None else "; safetensors not installed, no cross-check"))


if __name__ == "__main__":
    sys.exit(main())
