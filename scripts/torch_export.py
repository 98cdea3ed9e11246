#!/usr/bin/python3
"""Writes a torchvision model's weights, or a PyTorch .pth file, as safetensors, with PyTorch alone.

  /usr/bin/python3 scripts/torch_export.py --model resnet50 [--weights W.pth | --seed S] --out resnet50.safetensors
  /usr/bin/python3 scripts/torch_export.py --pth W.pth --out W.safetensors
  options: --dtype keep|float32|float16|bfloat16 (floating tensors; default keep)

--model builds torchvision.models.<NAME> (random weights from --seed, or the state_dict in --weights
loaded with strict name and shape checks); --pth exports a file's state_dict as it is. Either may be
a checkpoint dict that holds the state_dict under "state_dict" or "model". Files are read with
torch.load(weights_only=True), which refuses pickles that would run code.

The safetensors format (https://github.com/huggingface/safetensors), written here by its
specification because the `safetensors` package is not in Debian: an 8-byte little-endian header
length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{str: str}} padded with spaces to a multiple of 8, then each tensor's bytes, contiguous, row-major,
little-endian, largest elements first then by name (so every tensor is aligned to its element size),
covering the data exactly. Tensors that share storage are written as separate copies. The output is
written to a temporary file and renamed. Needs Debian's python3-torch and python3-torchvision."""
import argparse
import json
import os
import sys

import torch

DTYPE_NAMES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
               torch.bool: "BOOL"}
CAST = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def fail(msg):
    sys.exit(f"torch_export: {msg}")


def load_state_dict(path):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is reported with the file's name
        fail(f"cannot read '{path}': {e}")
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        fail(f"'{path}' holds no state_dict (a dict of tensors, or one under 'state_dict' or 'model')")
    return obj


def serialize(tensors, metadata):
    if sys.byteorder != "little":
        fail("safetensors stores little-endian data; this machine is big-endian")
    items = []
    for name, t in tensors.items():
        if not name or name == "__metadata__":
            fail(f"tensor name '{name}' is not allowed in safetensors")
        if t.dtype not in DTYPE_NAMES:
            fail(f"tensor '{name}' has dtype {t.dtype}, which safetensors does not store")
        items.append((name, t.detach().cpu().contiguous()))
    items.sort(key=lambda it: (-it[1].element_size(), it[0]))
    header = {"__metadata__": metadata} if metadata else {}
    blobs, offset = [], 0
    for name, t in items:
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        if len(data) != t.numel() * t.element_size():
            fail(f"tensor '{name}': {len(data)} bytes for {t.numel()} elements of {t.dtype}")
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


def write_atomic(path, data):
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        fail(f"cannot write '{path}': {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a torchvision.models builder, e.g. resnet50, vgg16, mobilenet_v2")
    src.add_argument("--pth", help="a .pth/.pt file written by torch.save")
    ap.add_argument("--weights", help="with --model: a .pth state_dict to load (strict) instead of random weights")
    ap.add_argument("--seed", type=int, default=0, help="with --model and no --weights: the seed of the random init")
    ap.add_argument("--dtype", choices=["keep", *CAST], default="keep", help="cast floating tensors (default keep)")
    ap.add_argument("--out", required=True, help="the .safetensors file to write")
    args = ap.parse_args()
    if args.weights and not args.model:
        fail("--weights needs --model")

    if args.model:
        import torchvision

        builder = getattr(torchvision.models, args.model, None)
        if builder is None or not callable(builder):
            fail(f"torchvision.models has no model '{args.model}'")
        torch.manual_seed(args.seed)
        model = builder(weights=None)
        source = f"torchvision.models.{args.model}"
        if args.weights:
            try:
                model.load_state_dict(load_state_dict(args.weights), strict=True)
            except RuntimeError as e:
                fail(f"'{args.weights}' does not fit {source}: {e}")
            source += f" with weights from {os.path.basename(args.weights)}"
        else:
            source += f" with random weights (seed {args.seed})"
        tensors = model.state_dict()
    else:
        tensors = load_state_dict(args.pth)
        source = os.path.basename(args.pth)

    if args.dtype != "keep":
        tensors = {k: (v.to(CAST[args.dtype]) if v.is_floating_point() else v) for k, v in tensors.items()}
    metadata = {"format": "pt", "source": source, "torch": torch.__version__}
    write_atomic(args.out, serialize(tensors, metadata))
    print(f"torch_export: wrote {len(tensors)} tensors from {source} to {args.out}")


if __name__ == "__main__":
    main()
