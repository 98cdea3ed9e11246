#!/usr/bin/env python3
"""PyTorch's CPU figure for `fovea bench`'s inference suite: torchvision's model (random weights), eval
mode, under torch.inference_mode, on random inputs of the given size and batch, with the given thread
count (fovea bench passes its own). Prints 'torch images/s: <value>' (fovea bench parses it).

PyTorch at its best: see bench/torch_at_its_best.py (--system-malloc keeps glibc's malloc defaults).

  /usr/bin/python3 bench/inference_torch.py --model resnet50 --batch 8 --size 224 --threads 2 --steps 5
"""
import argparse
import sys
import time

import torch_at_its_best  # noqa: F401 (before torch: mallopt)
import torch  # noqa: E402 (after mallopt, so that PyTorch's allocations follow it)
import torchvision  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--cpu-time", action="store_true", help="time the process's CPU time (fovea bench --cpu-time)")
    ap.add_argument("--system-malloc", action="store_true", help="glibc's malloc defaults (see above)")
    a = ap.parse_args()
    if not hasattr(torchvision.models, a.model):
        print(f"inference_torch.py: torchvision has no model '{a.model}'")
        sys.exit(3)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = getattr(torchvision.models, a.model)(weights=None).eval()
    x = torch.rand(a.batch, 3, a.size, a.size) * 2 - 1
    clock = time.process_time if a.cpu_time else time.perf_counter
    with torch.inference_mode():
        for _ in range(a.warmup):
            net(x)
        times = []
        for _ in range(a.steps):
            t0 = clock()
            net(x)
            times.append(clock() - t0)
    times.sort()
    median = times[len(times) // 2]
    print(f"torch {a.model} threads {torch.get_num_threads()} batch {a.batch} size {a.size} steps {a.steps}: "
          f"median {median * 1e3:.2f} ms/batch (mkldnn {torch.backends.mkldnn.is_available()}, "
          f"{'system malloc' if a.system_malloc else 'malloc keeps freed memory'})")
    print(f"torch images/s: {a.batch / median:.1f}")


if __name__ == "__main__":
    main()
