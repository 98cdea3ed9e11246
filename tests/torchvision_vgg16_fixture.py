#!/usr/bin/python3
"""Writes what tests/torchvision_vgg16_slow_test.cpp compares fovea's vgg16 with: torchvision.models.vgg16
(weights=None, seeded) saved by torch.save(model.state_dict()) as OUTDIR/vgg16.pth (528 MB: the reason this
test is labelled slow), a random batch OUTDIR/input.npy [2, 3, 32, 32] (the smallest input its five max pools
take; the adaptive average pool then repeats the 1x1 map to 7x7) and its eval-mode logits
OUTDIR/vgg16.logits.npy.

    /usr/bin/python3 tests/torchvision_vgg16_fixture.py OUTDIR
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.set_num_threads(2)
torch.manual_seed(0)
x = torch.randn(2, 3, 32, 32)
np.save(os.path.join(out, "input.npy"), x.numpy())
torch.manual_seed(16)
model = torchvision.models.vgg16(weights=None).eval()
with torch.no_grad():
    # torchvision's init gives the classifier N(0, 0.01) weights and zero biases: logits of ~1e-3. Larger
    # biases keep the comparison away from float32's absolute noise floor.
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.bias.normal_(0, 0.1)
    logits = model(x)
torch.save(model.state_dict(), os.path.join(out, "vgg16.pth"))
np.save(os.path.join(out, "vgg16.logits.npy"), logits.numpy())
with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump({"tensors": len(model.state_dict())}, f)
