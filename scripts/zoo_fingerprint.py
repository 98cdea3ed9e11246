#!/usr/bin/env python3
"""Fingerprint short training runs of every zoo model, to prove a refactoring changed nothing.

For each zoo model and device, runs `fovea train` for a fixed number of steps with a fixed seed and
prints one JSON line: the training loss of those steps (metrics.jsonl, full precision) and the
SHA-256 of every tensor in the checkpoint (weights, optimizer state, batch-norm statistics), read by
the safetensors specification with no fovea code. Run it before and after a change and diff:

  /usr/bin/python3 scripts/zoo_fingerprint.py --fovea build/fovea --device cpu emu > after.jsonl
  diff before.jsonl after.jsonl      # empty: bitwise the same losses and tensors
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

ZOO = ["small_cnn", "mnist_cnn", "lenet5", "cifar_quick", "cifar_full", "resnet20", "resnet18_cifar", "resnet9", "mlp"]


def tensor_hashes(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in sorted(header.items()):
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            f.seek(base + begin)
            out[name] = hashlib.sha256(f.read(end - begin)).hexdigest()[:16]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fovea", default="build/fovea")
    ap.add_argument("--device", nargs="+", default=["cpu", "emu"])
    ap.add_argument("--models", nargs="+", default=ZOO)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--backend", default="custom",
                    help="fovea train --backend (custom: the reference on cpu, ours on emu; not train's default, "
                         "onednn on cpu, so fingerprints of older builds stay comparable)")
    args = ap.parse_args()
    for device in args.device:
        for model in args.models:
            with tempfile.TemporaryDirectory() as d:
                out = os.path.join(d, "run")
                cmd = [args.fovea, "train", "--model", model, "--dataset", "rings" if model == "mlp" else "synthetic",
                       "--device", device, "--epochs", "1", "--max-steps", str(args.steps), "--batch",
                       str(args.batch), "--backend", args.backend, "--seed", "7", "--threads", "2", "--out", out, "--quiet"]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    print(json.dumps({"model": model, "device": device, "error": r.stderr.strip()[-400:]}))
                    sys.stdout.flush()
                    continue
                metrics = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
                rec = {"model": model, "device": device,
                       "train_loss": [m["train_loss"] for m in metrics],
                       "test_loss": [m["test_loss"] for m in metrics],
                       "tensors": tensor_hashes(os.path.join(out, "checkpoint.safetensors"))}
                print(json.dumps(rec, sort_keys=True))
                sys.stdout.flush()


if __name__ == "__main__":
    main()
