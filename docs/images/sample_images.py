#!/usr/bin/env python3
"""The input images of the README's pictures, from the official dataset files (standard library only):
  sample_images.py cifar-montage TEST_BATCH.bin OUT.png   3x3 CIFAR-10 test images, 96x96 RGB 8-bit
  sample_images.py mnist-digit T10K-IMAGES.gz INDEX OUT.png  one MNIST test digit, 28x28 grey 8-bit"""
import gzip
import struct
import sys
import zlib

INDICES = [16, 13, 23, 1, 44, 37, 17, 6, 34]  # dog, horse, fire truck, ship, plane, car, horse, car, truck


def png(width, height, rows, colour_type=2):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def cifar_montage(batch, out):
    data = open(batch, "rb").read()
    record = 1 + 3 * 32 * 32
    assert len(data) == 10000 * record, f"{batch}: not a CIFAR-10 batch ({len(data)} bytes)"
    rows = [bytearray(96 * 3) for _ in range(96)]
    for t, idx in enumerate(INDICES):
        px = data[idx * record + 1:(idx + 1) * record]
        ty, tx = divmod(t, 3)
        for y in range(32):
            for x in range(32):
                for c in range(3):
                    rows[ty * 32 + y][(tx * 32 + x) * 3 + c] = px[c * 1024 + y * 32 + x]
    open(out, "wb").write(png(96, 96, rows))


def mnist_digit(images_gz, index, out):
    data = gzip.open(images_gz, "rb").read()
    magic, n, h, w = struct.unpack(">IIII", data[:16])
    assert magic == 2051 and 0 <= index < n, f"{images_gz}: not an IDX image file, or no image {index}"
    px = data[16 + index * h * w:16 + (index + 1) * h * w]
    open(out, "wb").write(png(w, h, [px[y * w:(y + 1) * w] for y in range(h)], colour_type=0))


if __name__ == "__main__":
    if sys.argv[1] == "cifar-montage":
        cifar_montage(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "mnist-digit":
        mnist_digit(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
