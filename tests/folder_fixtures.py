#!/usr/bin/python3
"""Writes a small ImageFolder dataset and what torchvision makes of it, for tests/image_test.cpp.

    /usr/bin/python3 tests/folder_fixtures.py OUTDIR

(tests/image_fixtures.py calls write() into its OUTDIR/folder_set: one Python start for both.)

OUTDIR/folder/{train,val}/<class>/...: JPEG and PNG files (RGB, grey, RGBA, upper-case extensions, a
sub-folder) and files ImageFolder ignores. OUTDIR/manifest.json: for each split, torchvision's classes,
class_to_idx and samples (paths relative to OUTDIR, labels); the image size of the eval transform; and
crops: a file, a box (top, left, height, width) and the .npy of F.resized_crop of it (uint8 [H, W, 3]),
the step of RandomResizedCrop after its box is drawn. OUTDIR/val_eval.npy: float32 [N, 3, S, S], the
val split through Resize(round(S * 256 / 224)), CenterCrop(S), ToTensor, Normalize (ImageNet)."""
import json
import os
import sys

import numpy as np
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

rng = np.random.default_rng(3)
SIZE = 40


def content(h, w, c):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.empty((h, w, c))
    for k in range(c):
        img[..., k] = 127 + 100 * np.sin(x / (5 + 3 * k) + y / (9 + 2 * k))
    img += rng.normal(0, 30, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def save(root, rel, h, w, mode, fmt):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    c = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    a = content(h, w, c)
    img = Image.fromarray(a[..., 0] if c == 1 else a, mode)
    if fmt == "JPEG":
        img.save(path, fmt, quality=90)
    else:
        img.save(path, fmt)


def write(out):
    root = os.path.join(out, "folder")
    for split in ("train", "val"):
        save(root, f"{split}/Zebra/a.png", 50, 70, "RGB", "PNG")
        save(root, f"{split}/Zebra/b.JPG", 61, 45, "RGB", "JPEG")
        save(root, f"{split}/apple/01.jpeg", 40, 40, "RGB", "JPEG")
        save(root, f"{split}/apple/nested/02.png", 33, 90, "L", "PNG")
        save(root, f"{split}/apple/03.PNG", 80, 52, "RGBA", "PNG")
        save(root, f"{split}/banana_split/x.png", 47, 47, "RGB", "PNG")
        with open(os.path.join(root, split, "apple", "notes.txt"), "w") as f:
            f.write("ignored\n")

    manifest = {"image_size": SIZE, "splits": {}, "crops": []}
    for split in ("train", "val"):
        ds = torchvision.datasets.ImageFolder(os.path.join(root, split))
        manifest["splits"][split] = {
            "classes": ds.classes,
            "class_to_idx": ds.class_to_idx,
            "samples": [[os.path.relpath(p, out), int(t)] for p, t in ds.samples],
        }

    resize = int(round(SIZE * 256 / 224))
    eval_t = T.Compose([T.Resize(resize), T.CenterCrop(SIZE), T.ToTensor(),
                        T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    val = torchvision.datasets.ImageFolder(os.path.join(root, "val"), transform=eval_t)
    np.save(os.path.join(out, "val_eval.npy"), np.stack([val[i][0].numpy() for i in range(len(val))]).astype(np.float32))

    for k, (rel, box) in enumerate([("train/Zebra/a.png", (3, 5, 30, 41)), ("train/apple/03.PNG", (0, 0, 80, 52)),
                                    ("train/apple/nested/02.png", (10, 40, 7, 9)), ("train/Zebra/b.JPG", (20, 1, 41, 30))]):
        img = Image.open(os.path.join(root, rel)).convert("RGB")
        crop = F.resized_crop(img, *box, [24, 24])
        name = f"crop{k}.npy"
        np.save(os.path.join(out, name), np.asarray(crop, dtype=np.uint8))
        manifest["crops"].append({"file": os.path.join("folder", rel), "box": list(box), "npy": name})

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    write(sys.argv[1])
