#!/usr/bin/env python3
"""An independent check of a fovea checkpoint: read it as the safetensors format specifies (no fovea code),
rebuild the network in PyTorch from the spec stored in it, load the weights and evaluate the test set.

  /usr/bin/python3 scripts/check_checkpoint_torch.py CKPT --data DIR [--expect-accuracy A]

The dataset (mnist, fashion-mnist, cifar10) and the normalisation come from the checkpoint. Checks every
rule of the safetensors header (8-byte little-endian length, JSON object, string-to-string __metadata__,
known dtypes, shapes matching byte ranges, ranges that tile the data exactly) and that PyTorch's
load_state_dict(strict=True) accepts the weights. With --expect-accuracy (a fraction, e.g. 0.9936 from
`fovea eval --json`), fails when PyTorch's accuracy differs by more than 0.1 percentage points: the two
frameworks sum in different orders, so a handful of borderline predictions may flip, no more.
Needs Debian's python3-torch and python3-numpy; the safetensors package is not in Debian.
"""
import argparse
import gzip
import json
import lzma
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

DTYPES = {"F32": (np.float32, 4), "F64": (np.float64, 8), "I64": (np.int64, 8), "I32": (np.int32, 4),
          "U8": (np.uint8, 1), "F16": (np.float16, 2), "I8": (np.int8, 1), "I16": (np.int16, 2), "BOOL": (np.bool_, 1)}


def fail(msg):
    sys.exit(f"check_checkpoint_torch: {msg}")


def read_safetensors(path):
    raw = open(path, "rb").read()
    if len(raw) < 8:
        fail(f"{path}: {len(raw)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        fail(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes)")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        fail(f"{path}: the header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        fail(f"{path}: __metadata__ must map strings to strings")
    data = raw[8 + n:]
    tensors, ranges = {}, []
    for name, info in header.items():
        if set(info) != {"dtype", "shape", "data_offsets"}:
            fail(f"{path}: tensor '{name}' has keys {sorted(info)}")
        if info["dtype"] not in DTYPES:
            fail(f"{path}: tensor '{name}' has unknown dtype {info['dtype']}")
        dt, size = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        if end - begin != count * size:
            fail(f"{path}: tensor '{name}' {info['shape']} {info['dtype']} spans {end - begin} bytes, "
                 f"needs {count * size}")
        ranges.append((begin, end, name))
        tensors[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(info["shape"]).copy()
    pos = 0
    for begin, end, name in sorted(ranges):
        if begin != pos:
            fail(f"{path}: tensor '{name}' starts at byte {begin}, expected {pos} (gap or overlap)")
        pos = end
    if pos != len(data):
        fail(f"{path}: the tensors cover {pos} of {len(data)} data bytes")
    return tensors, meta


def parse_item(item):
    parts = item.split(":")
    pos, keys = [], {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            keys[k] = v
        else:
            pos.append(p)
    return parts[0], pos, keys


def pair(text):
    a = [int(v) for v in text.split("x")]
    return (a[0], a[0]) if len(a) == 1 else (a[0], a[1])


class FlattenLinear(nn.Linear):
    """fovea's linear flattens a 4-D input first; one module keeps the parameter names '<index>.weight'."""

    def forward(self, x):
        return super().forward(x.flatten(1))


def build_model(spec, weights):
    layers = []
    for i, item in enumerate(spec.split(",")):
        name, pos, keys = parse_item(item)
        w = weights.get(f"{i}.weight")
        if name == "conv":
            groups = int(keys.get("groups", 1))
            pad = keys.get("pad", "0")
            layers.append(nn.Conv2d(w.shape[1] * groups, w.shape[0], pair(pos[1]), stride=pair(keys.get("stride", "1")),
                                    padding="same" if pad == "same" else pair(pad),
                                    dilation=pair(keys.get("dilation", "1")), groups=groups,
                                    bias=keys.get("bias", "1") != "0"))
        elif name == "linear":
            layers.append(FlattenLinear(w.shape[1], w.shape[0], bias=f"{i}.bias" in weights))
        elif name in ("maxpool", "avgpool"):
            k = pair(pos[0])
            stride = pair(keys["stride"]) if "stride" in keys else k
            pad = pair(keys.get("pad", "0"))
            layers.append(nn.MaxPool2d(k, stride, pad) if name == "maxpool" else
                          nn.AvgPool2d(k, stride, pad, count_include_pad=keys.get("include_pad", "1") != "0"))
        elif name == "gap":
            layers.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        elif name == "relu":
            layers.append(nn.ReLU())
        elif name == "leakyrelu":
            layers.append(nn.LeakyReLU(float(pos[0]) if pos else 0.01))
        elif name == "sigmoid":
            layers.append(nn.Sigmoid())
        elif name == "tanh":
            layers.append(nn.Tanh())
        elif name == "dropout":
            layers.append(nn.Dropout(float(pos[0]) if pos else 0.5))
        elif name == "flatten":
            layers.append(nn.Flatten())
        else:
            fail(f"spec item '{item}' is not supported by this checker (it rebuilds plain sequential nets)")
    return nn.Sequential(*layers)


def load_test_set(dataset, data_dir):
    def find(*names):
        for n in names:
            for suffix in ("", ".gz", ".xz"):
                p = os.path.join(data_dir, n + suffix)
                if os.path.exists(p):
                    return p
        fail(f"none of {names} in {data_dir}")

    def read(p):
        raw = open(p, "rb").read()
        return gzip.decompress(raw) if p.endswith(".gz") else lzma.decompress(raw) if p.endswith(".xz") else raw

    if dataset in ("mnist", "fashion-mnist"):
        img = read(find("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"))
        lab = read(find("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"))
        n, h, w = struct.unpack(">III", img[4:16])
        x = np.frombuffer(img[16:], np.uint8).reshape(n, 1, h, w)
        y = np.frombuffer(lab[8:], np.uint8).astype(np.int64)
    elif dataset == "cifar10":
        rec = np.frombuffer(read(find("test_batch.bin", "cifar-10-batches-bin/test_batch.bin")), np.uint8)
        rec = rec.reshape(-1, 3073)
        x, y = rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)
    else:
        fail(f"dataset '{dataset}' is not supported by this checker")
    return x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True, help="folder with the dataset's test files")
    ap.add_argument("--expect-accuracy", type=float, help="fovea's accuracy (fraction) to agree with")
    args = ap.parse_args()

    tensors, meta = read_safetensors(args.checkpoint)
    info = json.loads(meta["fovea"])
    weights = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    model = build_model(info["model_spec"], weights)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    model.eval()

    x, y = load_test_set(info["dataset"], args.data)
    mean = torch.tensor(info["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(info["std"]).view(1, -1, 1, 1)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 1000):
            xb = (torch.from_numpy(x[i:i + 1000].astype(np.float32)) / 255 - mean) / std
            correct += int((model(xb).argmax(1) == torch.from_numpy(y[i:i + 1000])).sum())
    acc = correct / len(y)
    print(f"{args.checkpoint}: safetensors header ok, {len(tensors)} tensors; PyTorch {torch.__version__} "
          f"rebuilt {info['model_name']} ({sum(v.size for v in weights.values())} parameters), "
          f"load_state_dict(strict=True) ok; {info['dataset']} test accuracy {100 * acc:.2f}%")
    if args.expect_accuracy is not None:
        diff = abs(acc - args.expect_accuracy)
        print(f"fovea: {100 * args.expect_accuracy:.2f}%, difference {100 * diff:.2f} points")
        if diff > 0.001:
            fail(f"PyTorch's accuracy {100 * acc:.2f}% differs from fovea's {100 * args.expect_accuracy:.2f}% "
                 f"by more than 0.1 points")


if __name__ == "__main__":
    main()
