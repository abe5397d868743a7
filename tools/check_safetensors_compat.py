#!/usr/bin/python3
"""Check that safetensors files (e.g. written by budgie) load with the
reference loader: `check_safetensors_compat.py FILE...`.

Needs the `safetensors` package (pip install safetensors) and numpy; not used
by `make test`. For each file it loads every tensor with
safetensors.numpy.load_file, reads the metadata with safe_open, and compares
the bytes of every tensor with the data section read by hand (so a disagreement
about offsets or dtypes shows up, not only a refusal to load). Exit 0 when
every file passes, 1 otherwise.
"""
import json
import struct
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
      "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def check(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    loaded = load_file(path)
    with safe_open(path, framework="numpy") as f:
        ref_meta = f.metadata() or {}
    if ref_meta != meta:
        return "metadata differs: %r vs %r" % (ref_meta, meta)
    if sorted(loaded) != sorted(header):
        return "tensor names differ: %r vs %r" % (sorted(loaded), sorted(header))
    for name, info in header.items():
        b, e = info["data_offsets"]
        mine = np.frombuffer(data[b:e], dtype=NP[info["dtype"]]).reshape(info["shape"])
        ref = loaded[name]
        if ref.dtype != mine.dtype or list(ref.shape) != list(mine.shape) or ref.tobytes() != mine.tobytes():
            return "tensor %s differs" % name
    return None


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip())
        return 2
    bad = 0
    for path in argv[1:]:
        try:
            err = check(path)
        except Exception as exc:  # the reference loader's refusal is the answer we want to show
            err = "%s: %s" % (type(exc).__name__, exc)
        print("%s: %s" % (path, "OK (loads with safetensors)" if err is None else "FAIL: " + err))
        bad += err is not None
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
