#!/usr/bin/python3
"""Peer numbers for `budgie data bench`: the same pipelines in PIL / torchvision,
on the same images, on one core.

    taskset -c 0 /usr/bin/python3 bench/augment_peer.py [--cifar .cache/cifar10]
        [--per-class 1000] [--imagenette .cache/imagenette/train] [--jpegs 500]
        [--size 160] [--seconds 3]

- cifar haet chain: the HAET training transform as ICLR_HAET2021/main.py composes it
  (seed-spec 1.2): torchvision RandomCrop(32, padding=4), RandomHorizontalFlip,
  the DeepVoltaire CIFAR10Policy (PIL; written from seed-spec 4.1-4.2, the op calls
  shared with tools/make_augment_fixtures.py), ToTensor, Cutout(1 hole, 16 px, numpy
  mask as uoguelph-mlrg/Cutout), Normalize. Images are decoded into memory first.
- jpeg: torchvision's ImageNet training transform on JPEG bytes held in memory:
  PIL open + convert('RGB') + RandomResizedCrop(size) + RandomHorizontalFlip +
  ToTensor + Normalize; and PIL decode alone.
Needs Debian's python3-pil, python3-numpy, python3-torch, python3-torchvision.
"""
import argparse
import io
import os
import random
import sys
import time

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from make_augment_fixtures import pil_op  # noqa: E402  (the DeepVoltaire op calls)

# seed-spec 4.1: (op1, p1, m1, op2, p2, m2); magnitude 0 where unused
POLICY = [
    ("Invert", 0.1, 0, "Contrast", 0.2, 6), ("Rotate", 0.7, 2, "TranslateX", 0.3, 9),
    ("Sharpness", 0.8, 1, "Sharpness", 0.9, 3), ("ShearY", 0.5, 8, "TranslateY", 0.7, 9),
    ("AutoContrast", 0.5, 0, "Equalize", 0.9, 0), ("ShearY", 0.2, 7, "Posterize", 0.3, 7),
    ("Color", 0.4, 3, "Brightness", 0.6, 7), ("Sharpness", 0.3, 9, "Brightness", 0.7, 9),
    ("Equalize", 0.6, 0, "Equalize", 0.5, 0), ("Contrast", 0.6, 7, "Sharpness", 0.6, 5),
    ("Color", 0.7, 7, "TranslateX", 0.5, 8), ("Equalize", 0.3, 0, "AutoContrast", 0.4, 0),
    ("TranslateY", 0.4, 3, "Sharpness", 0.2, 6), ("Brightness", 0.9, 6, "Color", 0.2, 8),
    ("Solarize", 0.5, 2, "Invert", 0.0, 0), ("Equalize", 0.2, 0, "AutoContrast", 0.6, 0),
    ("Equalize", 0.2, 0, "Equalize", 0.6, 0), ("Color", 0.9, 9, "Equalize", 0.6, 0),
    ("AutoContrast", 0.8, 0, "Solarize", 0.2, 8), ("Brightness", 0.1, 3, "Color", 0.7, 0),
    ("Solarize", 0.4, 5, "AutoContrast", 0.9, 0), ("TranslateY", 0.9, 9, "TranslateY", 0.7, 9),
    ("AutoContrast", 0.9, 0, "Solarize", 0.8, 3), ("Equalize", 0.8, 0, "Invert", 0.1, 0),
    ("TranslateY", 0.7, 9, "AutoContrast", 0.9, 0),
]


class CIFAR10Policy:
    """DeepVoltaire's sampling: randint for the sub-policy, random() < p, random sign."""

    def __call__(self, img):
        op1, p1, m1, op2, p2, m2 = POLICY[random.randint(0, len(POLICY) - 1)]
        if random.random() < p1:
            img = pil_op(img, op1, m1, random.choice([-1, 1]))
        if random.random() < p2:
            img = pil_op(img, op2, m2, random.choice([-1, 1]))
        return img


class Cutout:
    """One square hole of `length` px, centre uniform over pixels, box clipped."""

    def __init__(self, length):
        self.length = length

    def __call__(self, img):
        h, w = img.size(1), img.size(2)
        mask = np.ones((h, w), np.float32)
        y, x = np.random.randint(h), np.random.randint(w)
        y1, y2 = np.clip(y - self.length // 2, 0, h), np.clip(y + self.length // 2, 0, h)
        x1, x2 = np.clip(x - self.length // 2, 0, w), np.clip(x + self.length // 2, 0, w)
        mask[y1:y2, x1:x2] = 0.0
        return img * torch.from_numpy(mask).expand_as(img)


def report(name, images, secs):
    print(f"{name:46s} {images:8d} images {secs:6.2f} s  {images / secs:10.1f} img/s  (1 thread)", flush=True)


def timed(name, items, fn, seconds):
    n, t0 = 0, time.perf_counter()
    while True:
        for it in items:
            fn(it)
        n += len(items)
        t = time.perf_counter()
        if t - t0 >= seconds:
            break
    report(name, n, t - t0)


def class_files(root, per_class):
    out = []
    for cls in sorted(os.listdir(root)):
        d = os.path.join(root, cls)
        if os.path.isdir(d) and not cls.startswith("."):
            out += [os.path.join(d, f) for f in sorted(os.listdir(d)) if not f.startswith(".")][:per_class]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cifar", default=".cache/cifar10")
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--imagenette", default=".cache/imagenette/train")
    ap.add_argument("--jpegs", type=int, default=500)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    print(f"augment_peer.py: PIL {Image.__version__}, torch {torch.__version__}, "
          f"torchvision {__import__('torchvision').__version__}, 1 thread, ~{a.seconds} s per measurement")

    files = class_files(os.path.join(a.cifar, "train"), a.per_class)
    imgs = []
    for f in files:
        im = Image.open(f).convert("RGB")
        im.load()
        imgs.append(im)
    print(f"cifar: {len(imgs)} images from {a.cifar}/train (PIL)")
    norm = transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    haet = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                               CIFAR10Policy(), transforms.ToTensor(), Cutout(16), norm])
    plain = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                transforms.ToTensor(), norm])
    timed("cifar haet chain (crop flip AA-pil cutout norm)", imgs, haet, a.seconds)
    timed("cifar crop+flip+normalise", imgs, plain, a.seconds)

    jfiles = []
    classes = sorted(c for c in os.listdir(a.imagenette) if not c.startswith("."))
    for k, cls in enumerate(classes):  # the same spread over classes as budgie data bench
        quota = (a.jpegs - len(jfiles) + (len(classes) - k) - 1) // (len(classes) - k)
        d = os.path.join(a.imagenette, cls)
        jfiles += [os.path.join(d, f) for f in sorted(os.listdir(d)) if not f.startswith(".")][:quota]
    blobs = [open(f, "rb").read() for f in jfiles]
    print(f"jpeg: {len(blobs)} files from {a.imagenette}")
    rrc = transforms.Compose([transforms.RandomResizedCrop(a.size), transforms.RandomHorizontalFlip(),
                              transforms.ToTensor(),
                              transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])

    def decode(b):
        im = Image.open(io.BytesIO(b)).convert("RGB")
        im.load()
        return im

    timed("jpeg decode (PIL, full size)", blobs, decode, a.seconds)
    timed(f"jpeg decode+rrc{a.size}+flip+normalise", blobs, lambda b: rrc(decode(b)), a.seconds)


if __name__ == "__main__":
    main()
