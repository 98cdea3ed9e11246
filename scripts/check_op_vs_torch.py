#!/usr/bin/python3
"""Checks every op of fovea's op registry against PyTorch, forward and backward, on one device.

The op list, inputs, attributes, sample shapes and the PyTorch code of each op come from
`fovea op --list --json` (layers/ops/registry.h): this script has no op list of its own. For each op and
sample it makes random inputs (its own generator, following each input's fill rule), runs `fovea op` on
them, runs the op's PyTorch code in float64 on the same inputs, differentiates it with autograd against
the same output gradients, and compares every output and input gradient by relative L2 error.
Needs Debian's python3-torch (an independent check, not a build dependency).

    /usr/bin/python3 scripts/check_op_vs_torch.py --fovea build/fovea --device emu [--ops conv2d,lrn]
        [--backend cudnn] [--bench-samples] [--tol 1e-4] [--seed 1]

Prints one line per (op, sample, tensor) with the relative L2 error; exits 1 if any exceeds --tol or an
op fails, 0 otherwise."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

M = np.uint64(0xFFFFFFFF)


def _mulhilo(a, b):
    p = np.uint64(a) * b
    return p >> np.uint64(32), p & M


def philox_uniform(seed, offset, n):
    """core/philox.h's philox_uniform(seed, offset, i) for i < n, as a float64 tensor (exact values)."""
    i = np.arange(n, dtype=np.uint64)
    block = i >> np.uint64(2)
    c = [block & M, block >> np.uint64(32), np.full(n, offset & 0xFFFFFFFF, np.uint64),
         np.full(n, offset >> 32, np.uint64)]
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    for _ in range(10):
        hi0, lo0 = _mulhilo(0xD2511F53, c[0])
        hi1, lo1 = _mulhilo(0xCD9E8D57, c[2])
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
        k0 = (k0 + np.uint64(0x9E3779B9)) & M
        k1 = (k1 + np.uint64(0xBB67AE85)) & M
    words = np.stack(c, axis=1)[np.arange(n), (i & np.uint64(3)).astype(np.int64)]
    return torch.from_numpy((words >> np.uint64(8)).astype(np.float64) / 16777216.0)


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if not np.isfinite(a).all() or not np.isfinite(b).all():
        return float("nan")
    denom = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (denom if denom > 0 else 1.0))


def make_input(spec, shape, shapes, first, rng):
    """A random value for an input by its fill rule (layers/ops/registry.h: Fill)."""
    fill, n = spec["fill"], int(np.prod(shape)) if shape else 1
    if fill == "uniform":
        return rng.uniform(-1, 1, shape).astype(np.float32)
    if fill == "positive":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if fill == "distinct":
        return (rng.permutation(n).astype(np.float32) * 0.01 - 0.005 * n).reshape(shape)
    if fill == "labels":
        return rng.integers(0, shapes[first][1], shape, dtype=np.int64)
    if fill == "pixels":
        return rng.uniform(0, 1, shape).astype(np.float32)
    if fill == "warps":
        width = shapes[first][3]
        a = np.zeros(shape, np.float32)
        for r in range(shape[0]):
            if r % 2 == 0:  # whole-pixel shift, maybe a flip
                flip = rng.random() < 0.5
                a[r] = [-1 if flip else 1, 0, rng.integers(-2, 3) + (width - 1 if flip else 0), 0, 1, rng.integers(-2, 3)]
            else:
                a[r] = [1 + 0.1 * rng.uniform(-1, 1), 0.1 * rng.uniform(-1, 1), 1.5 * rng.uniform(-1, 1),
                        0.1 * rng.uniform(-1, 1), 1 + 0.1 * rng.uniform(-1, 1), 1.5 * rng.uniform(-1, 1)]
        return a
    raise ValueError(f"unknown fill rule {fill}")


def attr_value(spec, text):
    t = spec["type"]
    if t == "int":
        return int(text)
    if t == "pair":
        parts = [int(p) for p in text.split(",")]
        return (parts[0], parts[-1])
    if t == "float":
        return float(text)
    if t == "bool":
        return text in ("1", "true", "yes", "on")
    if t == "floats":
        return [float(p) for p in text.split(",")] if text else []
    raise ValueError(f"unknown attribute type {t}")


def run_fovea(args, op, tensors, attrs, workdir):
    cmd = [args.fovea, "op", op["name"], "--device", args.device, "--backend", args.backend, "--out", workdir]
    for name, arr in tensors.items():
        path = os.path.join(workdir, f"in_{name}.npy")
        np.save(path, arr)
        cmd += ["--in", f"{name}={path}"]
    for k, v in attrs.items():
        cmd += ["--attr", f"{k}={v}"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\nexit {res.returncode}: {res.stderr.strip()}")
    return {f[:-4]: np.load(os.path.join(workdir, f)) for f in os.listdir(workdir)
            if f.endswith(".npy") and not f.startswith("in_")}


def check_sample(args, op, sample, rng, workdir):
    """Returns [(tensor name, rel L2 error)] for one sample."""
    shapes = {k: tuple(v) for k, v in sample["shapes"].items()}
    first = op["inputs"][0]["name"]
    values = {}
    for spec in op["inputs"]:
        if spec["name"] in shapes:
            values[spec["name"]] = make_input(spec, shapes[spec["name"]], shapes, first, rng)
    attrs_text = {a["name"]: sample["attrs"].get(a["name"], a["default"]) for a in op["attrs"]}
    attrs = {a["name"]: attr_value(a, attrs_text[a["name"]]) for a in op["attrs"]}

    # PyTorch, float64: inputs as tensors (the differentiable ones requiring grad), attributes by type.
    env = {"torch": torch, "F": F, "np": np, "philox_uniform": philox_uniform}
    leaves = {}
    for spec in op["inputs"]:
        name = spec["name"]
        env[f"{name}_dtype"] = str(values[name].dtype) if name in values else None
        if name not in values:
            env[name] = None
            continue
        arr = values[name]
        t = torch.from_numpy(arr.astype(np.float64) if arr.dtype == np.float32 else arr)
        if f"d{name}" in op["grads"]:
            t.requires_grad_()
            leaves[name] = t
        env[name] = t
    env.update(attrs)
    exec(op["torch"], env)

    # fovea, with output gradients when the op has a backward.
    tensors = dict(values)
    douts = {}
    if op["grads"]:
        for out in op["grad_outputs"]:
            ref = env[out]
            douts[out] = rng.uniform(-1, 1, tuple(ref.shape)).astype(np.float32)
            tensors[f"d{out}"] = douts[out]
    got = run_fovea(args, op, tensors, {k: v for k, v in sample["attrs"].items()}, workdir)

    errors = []
    for out in op["outputs"]:
        if out in got or env.get(out) is not None:
            want = env.get(out)
            errors.append((out, rel_l2(got[out], want.detach().numpy()) if out in got and want is not None
                           else float("inf")))
    if op["grads"] and leaves:
        outs = [env[o] for o in op["grad_outputs"]]
        gouts = [torch.from_numpy(douts[o].astype(np.float64)) for o in op["grad_outputs"]]
        grads = torch.autograd.grad(outs, list(leaves.values()), gouts, allow_unused=True)
        for name, g in zip(leaves, grads):
            want = torch.zeros_like(leaves[name]) if g is None else g
            errors.append((f"d{name}", rel_l2(got[f"d{name}"], want.numpy()) if f"d{name}" in got else float("inf")))
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fovea", default="build/fovea")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default="custom")
    ap.add_argument("--ops", default="", help="comma-separated op names (default: every registered op)")
    ap.add_argument("--bench-samples", action="store_true", help="also the large benchmark samples")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    listing = subprocess.run([args.fovea, "op", "--list", "--json"], capture_output=True, text=True, check=True)
    ops = json.loads(listing.stdout)
    wanted = set(filter(None, args.ops.split(",")))
    unknown = wanted - {op["name"] for op in ops}
    if unknown:
        sys.exit(f"unknown ops: {', '.join(sorted(unknown))}")
    slot = "cudnn" if args.backend == "cudnn" else args.device.split(":")[0]
    rng = np.random.default_rng(args.seed)
    worst, bad, checks, skipped = 0.0, [], 0, []
    for op in ops:
        if wanted and op["name"] not in wanted:
            continue
        if slot not in op["implementations"] and slot != "cudnn":
            skipped.append(f"{op['name']} (no {slot} implementation)")
            continue
        for sample in op["samples"]:
            if sample["bench"] and not args.bench_samples:
                continue
            with tempfile.TemporaryDirectory() as d:
                try:
                    errors = check_sample(args, op, sample, rng, d)
                except Exception as e:  # report and go on: every failure is listed at the end
                    bad.append(f"{op['name']}/{sample['name']}: {e}")
                    print(f"FAIL {op['name']}/{sample['name']}: {e}")
                    continue
            for name, err in errors:
                checks += 1
                ok = err <= args.tol
                worst = max(worst, err) if np.isfinite(err) else float("inf")
                print(f"{'ok  ' if ok else 'FAIL'} {op['name']}/{sample['name']} {name}: rel L2 {err:.2e}")
                if not ok:
                    bad.append(f"{op['name']}/{sample['name']} {name}: {err:.2e}")
    for s in skipped:
        print(f"skip {s}")
    print(f"{checks} checks on device {args.device} backend {args.backend}: {checks - len(bad)} passed, "
          f"worst relative L2 error {worst:.1e} (tolerance {args.tol:g}); {len(skipped)} ops skipped")
    if bad:
        print("failures:\n  " + "\n  ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()
