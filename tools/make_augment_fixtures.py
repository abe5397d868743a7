#!/usr/bin/python3
"""Reference outputs for budgie's AutoAugment ops and bilinear resize, from PIL.

Run with Debian's /usr/bin/python3 (Pillow 9.4, numpy; torchvision 0.14 for the
optional torchvision-variant cases):

    /usr/bin/python3 tools/make_augment_fixtures.py [--cifar .cache/cifar10] [--out tests/fixtures/augment]

The PIL calls below are the DeepVoltaire AutoAugment operations as HAET ran
them (seed-spec 4.2), written here from that description: magnitude bins from
numpy.linspace, the sign passed in instead of drawn, BICUBIC shear and NEAREST
translate with fill (128,128,128), rotate through RGBA and a grey composite.
The torchvision cases call torchvision's own op (_apply_op) with its own bins.

Output (tests/test_augment.c reads it):
  in_K.jpg        the CIFAR-10 test JPEG, byte for byte
  in_K.png        PIL's decode of it (the input of every case)
  pil_K.png       a strip of 32x32 tiles, one per case of image K
  tv_K.png        the same for the torchvision variant
  cases.txt       "variant image op magnitude sign tile" per case
  resize_in.png   an 80x80 image; resize.txt lists crop boxes and sizes with
  resize_N.png    PIL's crop().resize(BILINEAR) of it
"""
import argparse
import io
import os
import shutil

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

OPS = ["ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Color", "Posterize",
       "Solarize", "Contrast", "Sharpness", "Brightness", "AutoContrast", "Equalize", "Invert"]
SIGNED_PIL = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Color", "Contrast", "Sharpness", "Brightness"}
NO_MAGNITUDE = {"AutoContrast", "Equalize", "Invert"}
FILL = (128, 128, 128)

# DeepVoltaire's bins: numpy float64 linspace, posterize rounded to ints.
BINS = {
    "ShearX": np.linspace(0, 0.3, 10), "ShearY": np.linspace(0, 0.3, 10),
    "TranslateX": np.linspace(0, 150 / 331, 10), "TranslateY": np.linspace(0, 150 / 331, 10),
    "Rotate": np.linspace(0, 30, 10), "Color": np.linspace(0.0, 0.9, 10),
    "Posterize": np.round(np.linspace(8, 4, 10), 0).astype(int), "Solarize": np.linspace(256, 0, 10),
    "Contrast": np.linspace(0.0, 0.9, 10), "Sharpness": np.linspace(0.0, 0.9, 10),
    "Brightness": np.linspace(0.0, 0.9, 10),
}


def pil_op(img, op, m, sign):
    """One DeepVoltaire operation with a given sign (+1/-1)."""
    if op == "AutoContrast":
        return ImageOps.autocontrast(img)
    if op == "Equalize":
        return ImageOps.equalize(img)
    if op == "Invert":
        return ImageOps.invert(img)
    v = BINS[op][m]
    if op == "ShearX":
        return img.transform(img.size, Image.AFFINE, (1, v * sign, 0, 0, 1, 0), Image.BICUBIC, fillcolor=FILL)
    if op == "ShearY":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, v * sign, 1, 0), Image.BICUBIC, fillcolor=FILL)
    if op == "TranslateX":
        return img.transform(img.size, Image.AFFINE, (1, 0, v * img.size[0] * sign, 0, 1, 0), fillcolor=FILL)
    if op == "TranslateY":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, v * img.size[1] * sign), fillcolor=FILL)
    if op == "Rotate":  # no sign: DeepVoltaire always rotates counter-clockwise
        rgba = img.convert("RGBA").rotate(v)
        return Image.composite(rgba, Image.new("RGBA", rgba.size, (128,) * 4), rgba).convert(img.mode)
    if op == "Posterize":
        return ImageOps.posterize(img, int(v))
    if op == "Solarize":
        return ImageOps.solarize(img, v)
    enhancer = {"Color": ImageEnhance.Color, "Contrast": ImageEnhance.Contrast,
                "Sharpness": ImageEnhance.Sharpness, "Brightness": ImageEnhance.Brightness}[op]
    return enhancer(img).enhance(1 + v * sign)


def tv_op(img, op, m, sign):
    """torchvision 0.14's AutoAugment op (PIL input, NEAREST, fill None)."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.autoaugment import AutoAugment, _apply_op
    space = AutoAugment()._augmentation_space(10, (img.size[1], img.size[0]))  # (height, width), as forward() passes it
    mags, signed = space[op]
    v = float(mags[m].item()) if mags.ndim > 0 else 0.0
    if signed and sign < 0:
        v *= -1.0
    with torch.no_grad():
        return _apply_op(img, op, v, interpolation=InterpolationMode.NEAREST, fill=None)


def cases_for(image_index, variant):
    mags = [[1, 4, 7], [2, 5, 8], [3, 6, 9]][image_index % 3] if variant == "pil" else [3, 9]
    out = []
    for op in OPS:
        if op in NO_MAGNITUDE:
            out.append((op, 0, 1))
            continue
        signed = op in SIGNED_PIL or (variant == "tv" and op == "Rotate")
        for m in mags:
            for s in ([1, -1] if signed else [1]):
                out.append((op, m, s))
    return out


def save_png(img, path):
    img.save(path, optimize=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cifar", default=".cache/cifar10")
    ap.add_argument("--out", default="tests/fixtures/augment")
    ap.add_argument("--no-tv", action="store_true", help="skip the torchvision cases")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    picks = ["test/cat/0000.jpg", "test/ship/0001.jpg", "test/frog/0002.jpg"]
    lines = ["# variant image op magnitude sign tile   (tools/make_augment_fixtures.py)"]
    have_tv = not a.no_tv
    if have_tv:
        try:
            import torchvision  # noqa: F401
        except ImportError:
            have_tv = False
    for k, rel in enumerate(picks):
        src = os.path.join(a.cifar, rel)
        shutil.copyfile(src, os.path.join(a.out, f"in_{k}.jpg"))
        img = Image.open(src).convert("RGB")
        save_png(img, os.path.join(a.out, f"in_{k}.png"))
        variants = [("pil", pil_op)] + ([("tv", tv_op)] if have_tv and k == 0 else [])
        for variant, fn in variants:
            cs = cases_for(k, variant)
            strip = Image.new("RGB", (32 * len(cs), 32))
            for t, (op, m, s) in enumerate(cs):
                strip.paste(fn(img, op, m, s), (32 * t, 0))
                lines.append(f"{variant} {k} {op} {m} {s:+d} {t}")
            save_png(strip, os.path.join(a.out, f"{variant}_{k}.png"))
    with open(os.path.join(a.out, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    # Resize: an 80x80 image (CIFAR upsampled, as Mini-ImageNet 80 px stands in
    # for HAET's evaluation data), cropped and resized as torchvision's
    # resized_crop does with a PIL image: crop, then resize(BILINEAR).
    big = Image.open(os.path.join(a.cifar, picks[1])).convert("RGB").resize((80, 80), Image.BICUBIC)
    save_png(big, os.path.join(a.out, "resize_in.png"))
    boxes = [(0, 0, 80, 80, 32, 32), (7, 11, 61, 47, 32, 32), (20, 20, 24, 24, 32, 32), (3, 5, 70, 40, 27, 45)]
    rl = ["# index x y w h out_w out_h   (crop box of resize_in.png, then PIL resize BILINEAR)"]
    for i, (x, y, w, h, ow, oh) in enumerate(boxes):
        save_png(big.crop((x, y, x + w, y + h)).resize((ow, oh), Image.BILINEAR), os.path.join(a.out, f"resize_{i}.png"))
        rl.append(f"{i} {x} {y} {w} {h} {ow} {oh}")
    with open(os.path.join(a.out, "resize.txt"), "w") as f:
        f.write("\n".join(rl) + "\n")
    total = sum(os.path.getsize(os.path.join(a.out, n)) for n in os.listdir(a.out))
    print(f"wrote {len(lines) - 1} op cases and {len(boxes)} resize cases to {a.out} ({total} bytes)")


if __name__ == "__main__":
    main()
