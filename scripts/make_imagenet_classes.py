#!/usr/bin/python3
"""Writes layers/data/imagenet_classes.txt: the 1000 ImageNet-1k class names in the order of the
classifiers' outputs (line i is class i), from torchvision's weights metadata. Run once; the file is
committed and compiled into fovea (layers/data/imagenet_classes.h).

    /usr/bin/python3 scripts/make_imagenet_classes.py [OUT]

Every ImageNet-1k weight set of the models fovea follows (resnet18/34/50, vgg16, mobilenet_v2) has the
same list; the script checks that. Needs Debian's python3-torchvision (0.14); nothing is downloaded."""
import os
import sys

import torchvision.models as M

WEIGHTS = [M.ResNet18_Weights.IMAGENET1K_V1, M.ResNet34_Weights.IMAGENET1K_V1, M.ResNet50_Weights.IMAGENET1K_V1,
           M.ResNet50_Weights.IMAGENET1K_V2, M.VGG16_Weights.IMAGENET1K_V1, M.MobileNet_V2_Weights.IMAGENET1K_V1,
           M.MobileNet_V2_Weights.IMAGENET1K_V2]

names = WEIGHTS[0].meta["categories"]
for w in WEIGHTS[1:]:
    if w.meta["categories"] != names:
        sys.exit(f"make_imagenet_classes: {w} has a different class list")
if len(names) != 1000 or len(set(names)) != 1000 or any(not n or "\n" in n or n != n.strip() for n in names):
    sys.exit("make_imagenet_classes: expected 1000 distinct one-line names")

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "layers", "data", "imagenet_classes.txt")
tmp = f"{out}.tmp.{os.getpid()}"
with open(tmp, "w", encoding="utf-8", newline="\n") as f:
    f.write("\n".join(names) + "\n")
os.replace(tmp, out)
print(f"make_imagenet_classes: wrote {len(names)} names to {out}")
