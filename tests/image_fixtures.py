#!/usr/bin/python3
"""Writes the images tests/image_test.cpp reads, and what PIL and torchvision make of them.

    /usr/bin/python3 tests/image_fixtures.py OUTDIR

Images of odd sizes, grey and colour, JPEG (baseline 4:2:0, 4:4:4, progressive, CMYK) and PNG (grey,
grey+alpha, RGB, RGBA, palette, 1-bit, 16-bit RGB), with noise, edges and gradients so that every
filter tap matters. For each image, as .npy written by numpy:
  <name>.decoded.npy     np.asarray(Image.open(f)): PIL's decoding (its own mode: L, LA, RGB, RGBA, CMYK, P)
  <name>.rgb.npy         Image.open(f).convert("RGB")
  <name>.crop.npy        CenterCrop(224)(Resize(256)(rgb)): the 8-bit pixels before ToTensor
  <name>.input.npy       the whole torchvision eval transform: float32 [3, 224, 224]
and resizes of some images to other sizes with Image.resize(size, Image.BILINEAR) (up, down, one
axis only). OUTDIR/manifest.json lists everything, and torchvision's ImageNet class names."""
import json
import os
import struct
import sys
import zlib

import numpy as np
import torchvision
import torchvision.transforms as T
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
manifest = {"images": {}, "resizes": []}
eval_transform = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                            T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])


def content(h, w, c):
    """Smooth gradients, a few hard-edged blocks and noise: every part of the resampling filter shows."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.empty((h, w, c))
    for k in range(c):
        img[..., k] = 127 + 100 * np.sin(x / (7 + 5 * k) + y / (11 + 3 * k))
    img[h // 4:h // 2, w // 3:w // 2] = 250
    img[h // 2:3 * h // 4, w // 5:w // 3] = 5
    img += rng.normal(0, 25, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def png_bytes(rows, width, bit_depth, colour_type):
    """A PNG written by hand (PIL cannot write 16-bit RGB): `rows` is [height, row bytes], filter 0."""
    data = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", width, len(rows), bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")


def add(name, path):
    im = Image.open(path)
    im.load()
    entry = {"file": os.path.basename(path), "mode": im.mode, "width": im.width, "height": im.height}
    if im.mode not in ("P", "1"):  # palettes are compared after convert("RGB"); mode 1 is bool
        np.save(os.path.join(out, name + ".decoded.npy"), np.ascontiguousarray(np.asarray(im)))
        entry["decoded"] = name + ".decoded.npy"
    rgb = im.convert("RGB")
    np.save(os.path.join(out, name + ".rgb.npy"), np.asarray(rgb))
    crop = T.CenterCrop(224)(T.Resize(256)(rgb))
    np.save(os.path.join(out, name + ".crop.npy"), np.asarray(crop))
    np.save(os.path.join(out, name + ".input.npy"), eval_transform(rgb).numpy())
    entry.update(rgb=name + ".rgb.npy", crop=name + ".crop.npy", input=name + ".input.npy")
    manifest["images"][name] = entry
    return rgb


def save(name, img, ext, **kwargs):
    path = os.path.join(out, f"{name}.{ext}")
    img.save(path, **kwargs)
    return add(name, path)


# JPEG: PIL's encoder (libjpeg-turbo), several layouts.
decoded_300 = save("jpeg_rgb_300x217", Image.fromarray(content(217, 300, 3)), "jpg", quality=90)
save("jpeg_rgb444_333x251", Image.fromarray(content(251, 333, 3)), "jpg", quality=95, subsampling=0)
save("jpeg_progressive_401x263", Image.fromarray(content(263, 401, 3)), "jpg", quality=80, progressive=True)
save("jpeg_grey_257x511", Image.fromarray(content(511, 257, 1)[..., 0], "L"), "jpg", quality=90)
save("jpeg_cmyk_301x123", Image.fromarray(content(123, 301, 4), "CMYK"), "jpg", quality=90)
save("jpeg_small_99x150", Image.fromarray(content(150, 99, 3)), "jpg")  # upscaled to 256
save("jpeg_wide_1001x260", Image.fromarray(content(260, 1001, 3)), "jpg")
save("jpeg_exact_256x300", Image.fromarray(content(300, 256, 3)), "jpg")  # shorter side already 256

# PNG: PIL's encoder for 8-bit modes, hand-written files for 1-bit and 16-bit.
save("png_rgb_333x251", Image.fromarray(content(251, 333, 3)), "png")
save("png_grey_199x257", Image.fromarray(content(257, 199, 1)[..., 0], "L"), "png")
save("png_rgba_300x300", Image.fromarray(content(300, 300, 4), "RGBA"), "png")
save("png_la_230x241", Image.fromarray(content(241, 230, 2), "LA"), "png")
save("png_palette_250x190", Image.fromarray(content(190, 250, 3)).quantize(colors=61), "png")
bits = content(231, 263, 1)[..., 0] > 127
rgb16 = content(229, 271, 3).astype(np.uint16) * 257 + rng.integers(0, 256, (229, 271, 3)).astype(np.uint16)
for name, data in {
    "png_1bit_263x231": png_bytes(np.packbits(bits, axis=1), 263, 1, 0),
    "png_rgb16_271x229": png_bytes(rgb16.reshape(229, -1).astype(">u2"), 271, 16, 2),
}.items():
    path = os.path.join(out, name + ".png")
    with open(path, "wb") as f:
        f.write(data)
    add(name, path)

# Resizes to other sizes: down by non-integer factors, up, one axis only, to 1 pixel.
for w, h in [(128, 97), (517, 333), (300, 100), (77, 217), (1, 1), (299, 1)]:
    name = f"resize_{w}x{h}"
    np.save(os.path.join(out, name + ".npy"), np.asarray(decoded_300.resize((w, h), Image.BILINEAR)))
    manifest["resizes"].append({"source": "jpeg_rgb_300x217", "width": w, "height": h, "npy": name + ".npy"})
grey = Image.open(os.path.join(out, "png_grey_199x257.png"))
np.save(os.path.join(out, "resize_grey_50x300.npy"), np.asarray(grey.resize((50, 300), Image.BILINEAR)))
manifest["resizes"].append({"source": "png_grey_199x257", "width": 50, "height": 300, "npy": "resize_grey_50x300.npy"})

# ImageNet's class names as torchvision's weights metadata holds them (layers/data/imagenet_classes.txt).
manifest["imagenet_categories"] = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)

# The folder dataset fixtures (tests/folder_fixtures.py) in the same Python start.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import folder_fixtures  # noqa: E402

folder_fixtures.write(os.path.join(out, "folder_set"))
