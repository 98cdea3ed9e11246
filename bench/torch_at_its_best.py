"""PyTorch at its best on this machine, for the PyTorch anchors of `fovea bench` (imported before torch).

glibc's malloc is told to keep freed memory (mallopt), as jemalloc or tcmalloc would, which PyTorch's CPU
performance guide recommends: PyTorch allocates every activation, gradient and reordered weight afresh, and with
glibc's defaults each large block is a new mmap that page-faults on first touch. On this project's (sandboxed)
machines that made ResNet-50 inference at batch 1 4.7x slower (6.8 s against 1.46 s per image, measured under
load). A script's --system-malloc flag keeps glibc's defaults.
"""
import ctypes
import sys


def keep_freed_memory():
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # the largest glibc accepts: blocks below it come from the heap
    ok &= libc.mallopt(M_TRIM_THRESHOLD, 1 << 31)  # and freed heap memory is not returned to the system
    ok &= libc.mallopt(M_TOP_PAD, 256 << 20)
    if not ok:
        sys.exit("torch_at_its_best.py: mallopt failed")


if "--system-malloc" not in sys.argv:
    keep_freed_memory()
