#!/usr/bin/env python3
"""PyTorch's CPU figure for `fovea bench`'s train-step suite: one training step (forward, softmax
cross-entropy, backward, SGD momentum 0.9 update) of the same zoo net on random 3x32x32 inputs.
Same approach as bench/mnist_cnn_torch.py. Prints 'torch images/s: <value>' (fovea bench parses it).
Nets: small_cnn, mnist_cnn, cifar_quick, resnet20, resnet18_cifar (layers/nn/models.cpp's specs); any other
name exits with code 3.

  /usr/bin/python3 bench/train_step_torch.py --model resnet20 --batch 32 --warmup 1 --steps 5

PyTorch at its best: see bench/torch_at_its_best.py (--system-malloc keeps glibc's malloc defaults).
"""
import argparse
import sys
import time

import torch_at_its_best  # noqa: F401 (before torch: mallopt)
import torch
import torch.nn as nn
import torch.nn.functional as F


def cbr(cin, cout, stride=1):
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def small_cnn():
    # conv:16:3:pad=1,bn,relu,maxpool:2, x3 (16, 32, 64), linear (bias on the convs, as the spec has)
    layers, cin = [], 3
    for w in (16, 32, 64):
        layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
        cin = w
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 4 * 4, 10))


def mnist_cnn():
    # conv:32:3,relu,conv:64:3,relu,maxpool:2,dropout:0.25,flatten,linear:128,relu,dropout:0.5,linear (on 3x32x32)
    return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(64 * 14 * 14, 128), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(128, 10))


def cifar_quick():
    # conv:32:5:pad=2,maxpool:3:stride=2:pad=1,relu,conv:32:5:pad=2,relu,avgpool:3:stride=2:pad=1,
    # conv:64:5:pad=2,relu,avgpool:3:stride=2:pad=1,flatten,linear:64,linear (avgpool counts the padding)
    return nn.Sequential(nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(3, 2, 1), nn.ReLU(),
                         nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2, 1),
                         nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2, 1), nn.Flatten(),
                         nn.Linear(64 * 4 * 4, 64), nn.Linear(64, 10))


class BlockA(nn.Module):
    """CIFAR ResNet basic block with the parameter-free zero-pad shortcut (option A)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(*cbr(cin, cout, stride)[:3], nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.cin, self.cout, self.stride = cin, cout, stride

    def forward(self, x):
        s = x
        if self.stride != 1 or self.cin != self.cout:
            s = x[:, :, ::self.stride, ::self.stride]
            pad = (self.cout - self.cin) // 2
            s = F.pad(s, (0, 0, 0, 0, pad, self.cout - self.cin - pad))
        return F.relu(self.body(x) + s)


def resnet20():
    layers, cin = cbr(3, 16), 16
    for stage, w in enumerate((16, 32, 64)):
        for b in range(3):
            stride = 2 if stage > 0 and b == 0 else 1
            layers.append(BlockA(cin, w, stride))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


class BlockB(nn.Module):
    """Basic block with a 1x1-conv + bn projection shortcut where the shape changes (res(...) in a spec)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(*cbr(cin, cout, stride), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.body(x) + (x if self.proj is None else self.proj(x)))


def resnet18_cifar():
    layers, cin = cbr(3, 64), 64
    for stage, w in enumerate((64, 128, 256, 512)):
        for b in range(2):
            layers.append(BlockB(cin, w, 2 if stage > 0 and b == 0 else 1))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))


NETS = {"small_cnn": small_cnn, "mnist_cnn": mnist_cnn, "cifar_quick": cifar_quick, "resnet20": resnet20,
        "resnet18_cifar": resnet18_cifar}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time the process's CPU time, not wall time (fovea bench --cpu-time; one thread on a busy machine)")
    ap.add_argument("--system-malloc", action="store_true", help="glibc's malloc defaults (torch_at_its_best.py)")
    a = ap.parse_args()
    if a.model not in NETS:
        print(f"train_step_torch.py: no PyTorch version of '{a.model}' (have: {', '.join(NETS)})")
        sys.exit(3)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = NETS[a.model]()
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(a.batch, 3, 32, 32) * 2 - 1
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    clock = time.process_time if a.cpu_time else time.perf_counter
    t0 = clock()
    for _ in range(a.steps):
        step()
    dt = clock() - t0
    print(f"torch {a.model} threads {torch.get_num_threads()} batch {a.batch} steps {a.steps}: "
          f"{dt / a.steps * 1e3:.2f} ms/step")
    print(f"torch images/s: {a.batch * a.steps / dt:.1f}")


if __name__ == "__main__":
    main()
