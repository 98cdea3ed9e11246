#!/usr/bin/python3
"""Writes the torchvision models and outputs tests/torchvision_models_test.cpp and tests/predict_test.cpp
compare fovea with.

    /usr/bin/python3 tests/torchvision_fixtures.py OUTDIR

For resnet18, resnet34, resnet50 and mobilenet_v2 (torchvision.models.<arch>(weights=None), seeded): batch-norm
statistics made non-trivial (running averages of two training-mode batches, then weights, biases and
variances scaled at random), the state_dict saved by torch.save as OUTDIR/<arch>.pth, and in eval mode
the logits of a random batch (OUTDIR/input.npy, [2, 3, 64, 64]) as OUTDIR/<arch>.logits.npy.

For `fovea predict`: OUTDIR/photo.jpg and photo.png (a synthetic 300x220 picture) and torchvision's top-5
for resnet18 with its weights on each, through PIL and the ImageNet eval transform, written to
manifest.json. Random weights give nearly uniform probabilities, so the fc layer is scaled until
consecutive top-6 logits are apart by a margin far above float32 rounding (a tie would make the
comparison meaningless)."""
import json
import os
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.set_num_threads(1)
manifest = {"models": {}, "predict": {}}

torch.manual_seed(0)
x = torch.randn(2, 3, 64, 64)
np.save(os.path.join(out, "input.npy"), x.numpy())


def make(arch, seed):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.momentum = None  # running statistics: the plain average of the batches below
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, 3, 64, 64))
        for m in bns:
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0, 0.2)
            m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.5, 2.0))
            m.running_mean.add_(torch.randn_like(m.running_mean) * 0.1)
            m.momentum = 0.1
    model.eval()
    return model


for i, arch in enumerate(("resnet18", "resnet34", "resnet50", "mobilenet_v2")):
    model = make(arch, 10 + i)
    torch.save(model.state_dict(), os.path.join(out, arch + ".pth"))
    with torch.no_grad():
        logits = model(x)
    np.save(os.path.join(out, arch + ".logits.npy"), logits.numpy())
    manifest["models"][arch] = {"file": arch + ".pth", "logits": arch + ".logits.npy",
                                "tensors": len(model.state_dict())}

# `fovea predict`: a picture, as JPEG and PNG, through PIL and torchvision's eval transform.
h, w = 220, 300
yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
rng = np.random.default_rng(1)
img = np.empty((h, w, 3))
for k in range(3):
    img[..., k] = 127 + 90 * np.sin(xx / (9 + 4 * k) + yy / (13 + 2 * k))
img[60:140, 100:200] = [230, 40, 30]
img += rng.normal(0, 12, img.shape)
img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
Image.fromarray(img).save(os.path.join(out, "photo.jpg"), quality=90)
Image.fromarray(img).save(os.path.join(out, "photo.png"))

transform = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                       T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
inputs = {name: transform(Image.open(os.path.join(out, name)).convert("RGB")).unsqueeze(0)
          for name in ("photo.jpg", "photo.png")}
model = make("resnet18", 20)
classes = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
scale = 1.0
for attempt in range(8):
    with torch.no_grad():
        logits = {name: model(t)[0] for name, t in inputs.items()}
    gaps = []
    for v in logits.values():
        top = torch.topk(v, 6).values
        spread = float(v.max() - v.min())
        gaps.append(float((top[:-1] - top[1:]).min()) / spread)
    if min(gaps) > 1e-3:
        break
    # A different fc draw until the top six are clearly apart.
    with torch.no_grad():
        torch.manual_seed(100 + attempt)
        model.fc.weight.normal_(0, 0.05)
        model.fc.bias.normal_(0, 0.05)
else:
    sys.exit("no fc draw gave top-6 logits apart by 1e-3 of their range")
torch.save(model.state_dict(), os.path.join(out, "predict_resnet18.pth"))
for name, v in logits.items():
    p = torch.softmax(v.double(), 0)
    top = torch.topk(p, 5)
    manifest["predict"][name] = {"labels": [classes[i] for i in top.indices.tolist()],
                                 "indices": top.indices.tolist(), "probabilities": top.values.tolist(),
                                 "min_relative_gap": min(gaps)}

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
