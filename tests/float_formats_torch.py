#!/usr/bin/env python3
"""PyTorch's conversions between float32 and float16/bfloat16, for tests/float_formats_test.cpp.

usage: float_formats_torch.py INPUT OUTDIR
  INPUT: little-endian float32 values (raw bytes)
  writes OUTDIR/f2h.bin and OUTDIR/f2bf.bin (uint16: each input converted by Tensor.to(torch.float16 /
  torch.bfloat16), round to nearest even) and OUTDIR/h2f.bin and OUTDIR/bf2f.bin (float32: every one of
  the 65536 float16 / bfloat16 bit patterns converted to float32), all raw little-endian.
"""
import os
import sys

import numpy as np
import torch


def main():
    src, out = sys.argv[1], sys.argv[2]
    x = torch.from_numpy(np.fromfile(src, dtype="<f4"))
    x.to(torch.float16).view(torch.int16).numpy().astype("<i2").tofile(os.path.join(out, "f2h.bin"))
    x.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tofile(os.path.join(out, "f2bf.bin"))
    patterns = torch.from_numpy(np.arange(65536, dtype=np.uint16).view(np.int16))
    patterns.view(torch.float16).float().numpy().astype("<f4").tofile(os.path.join(out, "h2f.bin"))
    patterns.view(torch.bfloat16).float().numpy().astype("<f4").tofile(os.path.join(out, "bf2f.bin"))


if __name__ == "__main__":
    main()
