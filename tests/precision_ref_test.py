#!/usr/bin/env python3
"""Independent reduced-precision GEMM and convolutions in PyTorch, for tests/precision_ref_test.cpp.

usage: precision_ref_test.py MANIFEST DIR
  MANIFEST lines: "ID gemm PREC M N K"                           (A is M x K, B is K x N, row-major)
              or  "ID OP PREC N C H W K R S stride pad dil groups" with OP in fprop, dgrad, wgrad
  inputs DIR/ID_0.bin, DIR/ID_1.bin (float32, raw): A, B for gemm; x, w (fprop); dy, w (dgrad); x, dy (wgrad).
  writes DIR/ID_out.bin (float64: the exact result on the rounded inputs) and DIR/ID_abs.bin (float64: the same
  op on the absolute values, the sum of |terms| of every output element).
Inputs are rounded as the precision says, by PyTorch (bfloat16, float16: nearest even) or, for tf32 (10 mantissa
bits, nearest, ties away from zero, as cvt.rna.tf32.f32), by the arithmetic below; then everything is float64.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def round_tf32(x):
    # |x| = m 2^e with m in [0.5, 1): the quantum of 11 significant bits is 2^(e - 11), at least 2^-136 (the
    # quantum of float32's subnormals with 10 mantissa bits kept); round half away from zero.
    a = np.abs(x.astype(np.float64))
    _, e = np.frexp(a)
    q = np.ldexp(1.0, np.maximum(e - 11, -136))
    r = np.floor(a / q + 0.5) * q
    return np.where(np.isfinite(x), np.copysign(r, x), x).astype(np.float32)


def rounded(x, prec):
    t = torch.from_numpy(x)
    if prec == "bf16":
        return t.to(torch.bfloat16).double()
    if prec == "fp16":
        return t.to(torch.float16).double()
    if prec == "tf32":
        return torch.from_numpy(round_tf32(x)).double()
    return t.double()


def main():
    manifest, d = sys.argv[1], sys.argv[2]
    with open(manifest) as f:
        for line in f:
            tok = line.split()
            if not tok:
                continue
            case, op, prec = tok[0], tok[1], tok[2]
            n = [int(v) for v in tok[3:]]
            x0 = np.fromfile(os.path.join(d, case + "_0.bin"), dtype="<f4")
            x1 = np.fromfile(os.path.join(d, case + "_1.bin"), dtype="<f4")
            a, b = rounded(x0, prec), rounded(x1, prec)
            if op == "gemm":
                M, N, K = n
                fn = lambda p, q: p.reshape(M, K) @ q.reshape(K, N)
            else:
                N_, C, H, W, K, R, S, stride, pad, dil, groups = n
                kw = dict(stride=stride, padding=pad, dilation=dil, groups=groups)
                P = (H + 2 * pad - dil * (R - 1) - 1) // stride + 1
                Q = (W + 2 * pad - dil * (S - 1) - 1) // stride + 1
                xs, ws, ys = (N_, C, H, W), (K, C // groups, R, S), (N_, K, P, Q)
                if op == "fprop":
                    fn = lambda p, q: F.conv2d(p.reshape(xs), q.reshape(ws), **kw)
                elif op == "dgrad":
                    fn = lambda p, q: torch.nn.grad.conv2d_input(xs, q.reshape(ws), p.reshape(ys), **kw)
                else:
                    fn = lambda p, q: torch.nn.grad.conv2d_weight(p.reshape(xs), ws, q.reshape(ys), **kw)
            fn(a, b).numpy().astype("<f8").tofile(os.path.join(d, case + "_out.bin"))
            fn(a.abs(), b.abs()).numpy().astype("<f8").tofile(os.path.join(d, case + "_abs.bin"))


if __name__ == "__main__":
    main()
