#!/usr/bin/python3
"""Write the optimizer reference fixtures: tests/fixtures/optim/<case>.safetensors.

Run with Debian's /usr/bin/python3 (PyTorch 1.13 installed there). Every case
runs one torch.optim optimizer (single-tensor path, foreach=False) for STEPS
steps over two parameters of shapes (3, 4) and (5,), once in float64 and once
in float32, and records the initial parameters, every gradient and the
parameters after every step. Parameter 1 gets no gradient at step 3 so the
tests also cover skipping (torch leaves its state, step count included,
untouched). ASGD also records its averaged parameters `ax`.

Tensor names, for D in {f64, f32}, k = 1..STEPS, i in {0, 1}:
  D.p<i>.init    parameters before the first step
  D.g<i>.step<k> gradient used by step k (absent when the grad is None)
  D.p<i>.step<k> parameters after step k
  D.ax<i>.step<k> (ASGD only) averaged parameters after step k
Metadata: "optimizer" (engine name), "hyperparameters" (JSON object as given
to the torch constructor; betas as a two-element list), "steps", "torch".

The file is written by hand (8-byte little-endian header length, JSON header
padded with spaces to a multiple of 8, raw little-endian data) so that the
script needs nothing but torch.
"""
import json
import os
import struct
import sys

import torch

STEPS = 5
SHAPES = [(3, 4), (5,)]
SKIP = {(1, 3)}  # (param index, step) whose gradient is None

# name -> (engine optimizer name, torch class, constructor keyword arguments)
CASES = {
    "sgd_plain": ("sgd", torch.optim.SGD, dict(lr=0.1, weight_decay=0.01)),
    "sgd_momentum": ("sgd", torch.optim.SGD,
                     dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    "sgd_nesterov": ("sgd", torch.optim.SGD,
                     dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "adam": ("adam", torch.optim.Adam,
             dict(lr=0.01, betas=[0.8, 0.95], eps=1e-6, weight_decay=0.05)),
    "adam_amsgrad": ("adam", torch.optim.Adam,
                     dict(lr=0.01, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.05,
                          amsgrad=True)),
    "adamw": ("adamw", torch.optim.AdamW,
              dict(lr=0.01, betas=[0.85, 0.98], eps=1e-7, weight_decay=0.1)),
    "adamw_amsgrad": ("adamw", torch.optim.AdamW,
                      dict(lr=0.01, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.1,
                           amsgrad=True)),
    "adamax": ("adamax", torch.optim.Adamax,
               dict(lr=0.02, betas=[0.85, 0.99], eps=1e-8, weight_decay=0.05)),
    "adagrad": ("adagrad", torch.optim.Adagrad,
                dict(lr=0.1, lr_decay=0.05, weight_decay=0.01,
                     initial_accumulator_value=0.1, eps=1e-10)),
    "adadelta": ("adadelta", torch.optim.Adadelta,
                 dict(lr=1.0, rho=0.8, eps=1e-6, weight_decay=0.01)),
    "asgd": ("asgd", torch.optim.ASGD,
             dict(lr=0.05, lambd=1e-3, alpha=0.75, t0=1.5, weight_decay=0.01)),
}

DTYPES = [("f64", torch.float64, "F64"), ("f32", torch.float32, "F32")]


def make_data(seed):
    """Initial parameters and gradients in float64 (rounded later for f32)."""
    gen = torch.Generator().manual_seed(seed)
    init = [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) * 0.5 for s in SHAPES]
             for _ in range(STEPS)]
    return init, grads


def run_case(engine_name, cls, kwargs, dtype, prefix, init, grads):
    out = {}
    params = [p.to(dtype).clone().requires_grad_(True) for p in init]
    for i, p in enumerate(params):
        out[f"{prefix}.p{i}.init"] = p.detach().clone()
    opt = cls(params, foreach=False, **kwargs)
    for k in range(1, STEPS + 1):
        for i, p in enumerate(params):
            if (i, k) in SKIP:
                p.grad = None
            else:
                p.grad = grads[k - 1][i].to(dtype).clone()
                out[f"{prefix}.g{i}.step{k}"] = p.grad.clone()
        opt.step()
        for i, p in enumerate(params):
            out[f"{prefix}.p{i}.step{k}"] = p.detach().clone()
            if engine_name == "asgd":
                out[f"{prefix}.ax{i}.step{k}"] = opt.state[p]["ax"].detach().clone()
    return out


def write_safetensors(path, tensors, meta):
    header = {"__metadata__": meta}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        st_dtype = {torch.float64: "F64", torch.float32: "F32"}[t.dtype]
        fmt = "<%d%s" % (t.numel(), "d" if t.dtype == torch.float64 else "f")
        blob = struct.pack(fmt, *t.reshape(-1).tolist())
        header[name] = {"dtype": st_dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outdir = os.path.join(root, "tests", "fixtures", "optim")
    os.makedirs(outdir, exist_ok=True)
    total = 0
    for seed, (case, (engine_name, cls, kwargs)) in enumerate(sorted(CASES.items())):
        init, grads = make_data(1000 + seed)
        tensors = {}
        for prefix, dtype, _ in DTYPES:
            tensors.update(run_case(engine_name, cls, kwargs, dtype, prefix, init, grads))
        meta = {"optimizer": engine_name, "hyperparameters": json.dumps(kwargs),
                "steps": str(STEPS), "torch": torch.__version__}
        path = os.path.join(outdir, case + ".safetensors")
        write_safetensors(path, tensors, meta)
        total += os.path.getsize(path)
        print(f"{path}: {len(tensors)} tensors")
    print(f"total {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
