#!/usr/bin/python3
"""Checks `fovea op` against PyTorch on random cases: every op of the `fovea op` contract, forward and
backward, on the device given (cpu, emu or cuda). Needs Debian's python3-torch (not a build dependency).

    /usr/bin/python3 scripts/check_op_vs_torch.py --fovea build/fovea --device emu [--cases 3] [--tol 1e-4]

Prints one line per (op, case, output) with the relative L2 error and exits 1 if any exceeds --tol."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if np.isnan(a).any():
        return float("nan")
    denom = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (denom if denom > 0 else 1.0))


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def attr_text(v):
    if isinstance(v, tuple):
        return f"{v[0]},{v[1]}"
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def run_fovea(fovea, op, device, backend, inputs, attrs, workdir):
    args = [fovea, "op", op, "--device", device, "--backend", backend, "--out", workdir]
    for name, arr in inputs.items():
        path = os.path.join(workdir, f"in_{name}.npy")
        np.save(path, arr)
        args += ["--in", f"{name}={path}"]
    for k, v in attrs.items():
        args += ["--attr", f"{k}={attr_text(v)}"]
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}\nexit {res.returncode}: {res.stderr.strip()}")
    return lambda name: np.load(os.path.join(workdir, f"{name}.npy"))


def cases(rng):
    """Yields (op, inputs, attrs, torch_fn) where torch_fn(inputs as tensors requiring grad) -> dict of outputs."""
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
    # conv2d with stride/pad/dilation/groups
    for (n, c, h, w, k, r, s, st, pd, dl, g, bias) in [
        (2, 3, 9, 11, 4, 3, 3, 1, 1, 1, 1, True),
        (1, 4, 12, 10, 6, 5, 3, (2, 1), (2, 1), 1, 2, False),
        (3, 6, 13, 13, 6, 3, 3, 2, 2, 2, 6, True),
        (2, 8, 8, 8, 16, 1, 1, 1, 0, 1, 1, True),
    ]:
        inp = {"x": f32(n, c, h, w), "w": f32(k, c // g, r, s)}
        if bias:
            inp["b"] = f32(k)
        y = F.conv2d(torch.from_numpy(inp["x"]), torch.from_numpy(inp["w"]), None, pair(st), pair(pd), pair(dl), g)
        inp["dy"] = f32(*y.shape)
        attrs = {"stride": pair(st), "pad": pair(pd), "dilation": pair(dl), "groups": g}

        def fn(t, st=st, pd=pd, dl=dl, g=g):
            return {"y": F.conv2d(t["x"], t["w"], t.get("b"), pair(st), pair(pd), pair(dl), g)}
        yield "conv2d", inp, attrs, fn
    for (n, c, h, w, k, st, pd) in [(2, 3, 9, 9, 3, 2, 1), (1, 2, 8, 7, 2, 2, 0), (2, 4, 10, 10, 3, 1, 1)]:
        x = f32(n, c, h, w)
        y = F.max_pool2d(torch.from_numpy(x), k, st, pd)
        yield "maxpool2d", {"x": x, "dy": f32(*y.shape)}, {"kernel": k, "stride": st, "pad": pd}, \
            (lambda t, k=k, st=st, pd=pd: {"y": F.max_pool2d(t["x"], k, st, pd)})
        for cip in (True, False):
            yield "avgpool2d", {"x": x, "dy": f32(*y.shape)}, \
                {"kernel": k, "stride": st, "pad": pd, "count_include_pad": cip}, \
                (lambda t, k=k, st=st, pd=pd, cip=cip: {"y": F.avg_pool2d(t["x"], k, st, pd, count_include_pad=cip)})
    x = f32(3, 5, 4, 6)
    yield "relu", {"x": x, "dy": f32(*x.shape)}, {}, lambda t: {"y": F.relu(t["x"])}
    for bias in (True, False):
        inp = {"x": f32(7, 13), "w": f32(9, 13), "dy": f32(7, 9)}
        if bias:
            inp["b"] = f32(9)
        yield "linear", inp, {}, lambda t: {"y": F.linear(t["x"], t["w"], t.get("b"))}
    for c in (1, 10, 1000):
        x = f32(5, c) * 3
        yield "softmax", {"x": x, "dy": f32(5, c)}, {}, lambda t: {"y": F.softmax(t["x"], dim=1)}
        yield "log_softmax", {"x": x, "dy": f32(5, c)}, {}, lambda t: {"y": F.log_softmax(t["x"], dim=1)}
    for c, ls in ((10, 0.0), (10, 0.1), (100, 0.2)):
        logits = f32(8, c) * 2
        labels = rng.integers(0, c, size=8).astype(np.int64)
        yield "cross_entropy", {"logits": logits, "labels": labels}, {"label_smoothing": ls}, \
            (lambda t, ls=ls: {"loss": F.cross_entropy(t["logits"], t["labels"], label_smoothing=ls)})
    for shape in ((4, 3, 5, 5), (2, 8, 7, 9)):
        x = f32(*shape) * 2 + 1
        c = shape[1]
        yield "batchnorm2d", {"x": x, "gamma": f32(c), "beta": f32(c), "dy": f32(*shape)}, {"eps": 1e-5}, \
            (lambda t: {"y": F.batch_norm(t["x"], None, None, t["gamma"], t["beta"], training=True, eps=1e-5)})


GRAD_NAMES = {"x": "dx", "w": "dw", "b": "db", "gamma": "dgamma", "beta": "dbeta", "logits": "dlogits"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fovea", default="build/fovea")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default="custom")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)  # the torch side in double: an independent, more accurate answer
    rng = np.random.default_rng(args.seed)
    worst, failures, count = 0.0, 0, 0
    for i, (op, inp, attrs, fn) in enumerate(cases(rng)):
        with tempfile.TemporaryDirectory() as d:
            out = run_fovea(args.fovea, op, args.device, args.backend, inp, attrs, d)
            t = {k: (torch.from_numpy(v.astype(np.float64)).requires_grad_(True) if v.dtype == np.float32
                     else torch.from_numpy(v)) for k, v in inp.items() if k != "dy"}
            ref = fn(t)
            main_name, main_val = next(iter(ref.items()))
            checks = [(main_name, main_val.detach().numpy())]
            if "dy" in inp or op == "cross_entropy":
                upstream = torch.from_numpy(inp["dy"].astype(np.float64)) if "dy" in inp else torch.tensor(1.0)
                main_val.backward(upstream)
                for k, v in t.items():
                    if v.requires_grad and v.grad is not None:
                        checks.append((GRAD_NAMES[k], v.grad.numpy()))
            for name, want in checks:
                err = rel_l2(out(name), want)
                count += 1
                ok = err <= args.tol
                worst = max(worst, err) if err == err else float("nan")
                failures += 0 if ok else 1
                print(f"{'ok  ' if ok else 'FAIL'} {op:14s} case {i:2d} {name:8s} rel_l2 {err:.2e}")
    print(f"{count - failures} passed, {failures} failed (device {args.device}, backend {args.backend}, "
          f"worst rel_l2 {worst:.2e}, tolerance {args.tol})")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
