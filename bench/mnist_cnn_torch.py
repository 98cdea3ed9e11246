#!/usr/bin/env python3
"""PyTorch anchor for bench/mnist_cnn_cpu_bench.cpp: the same MNIST CNN, batch and thread count.

conv 1->32 3x3, ReLU, conv 32->64 3x3, ReLU, maxpool 2, fc 9216->128, ReLU, fc 128->10,
softmax cross-entropy, SGD momentum 0.9, random 28x28 inputs and labels generated once.
Prints one line 'torch images/s: <value>' (the C++ bench parses it).

  /usr/bin/python3 bench/mnist_cnn_torch.py --threads 2 --batch 64 --warmup 5 --steps 30
"""
import argparse
import time

import torch_at_its_best  # noqa: F401 (before torch: mallopt; --system-malloc keeps glibc's defaults)
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--system-malloc", action="store_true", help="glibc's malloc defaults (torch_at_its_best.py)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(a.batch, 1, 28, 28)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=False)  # reuse the gradient buffers, as the C++ bench does
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print(f"torch threads {torch.get_num_threads()} batch {a.batch} steps {a.steps}: {dt / a.steps * 1e3:.2f} ms/step")
    print(f"torch images/s: {a.batch * a.steps / dt:.1f}")


if __name__ == "__main__":
    main()
