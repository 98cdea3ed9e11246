#!/usr/bin/python3
"""Writes the PyTorch files tests/pth_test.cpp reads, and what torch says they hold.

    /usr/bin/python3 tests/pth_fixtures.py OUTDIR

For each case: OUTDIR/<case>.pth written by torch.save, and for each tensor the fovea reader must
produce, a .npy written by numpy from torch's own conversion (floating -> float32 with .float(),
int64 kept, int32/int16/int8 -> int32, uint8/bool -> uint8). OUTDIR/manifest.json lists them:
{case: {"file": ..., "key": state_dict key, "format": "zip"|"legacy", "tensors": {name: {"npy", "dtype"}}}}.
Hostile files (foreign globals written by torch.save itself) are listed under "hostile". Then
scripts/torch_export.py runs as a user runs it, on some of these files; "exports" lists each run's
arguments, exit status, output and file, which the tests read back."""
import collections
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch
import torchvision

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
manifest = {"cases": {}, "hostile": {}}


def as_numpy(t):
    t = t.detach()
    if t.is_floating_point():
        return t.float().contiguous().numpy()
    if t.dtype == torch.int64:
        return t.contiguous().numpy()
    if t.dtype in (torch.int32, torch.int16, torch.int8):
        return t.to(torch.int32).contiguous().numpy()
    if t.dtype in (torch.uint8, torch.bool):
        return t.to(torch.uint8).contiguous().numpy()
    raise ValueError(t.dtype)


def case(name, obj, expect, key="", fmt="zip", **save_kwargs):
    path = os.path.join(out, name + ".pth")
    torch.save(obj, path, **save_kwargs)
    tensors = {}
    for i, (k, t) in enumerate(expect.items()):
        npy = f"{name}.{i}.npy"
        np.save(os.path.join(out, npy), as_numpy(t))
        tensors[k] = {"npy": npy, "dtype": str(t.dtype).replace("torch.", "")}
    manifest["cases"][name] = {"file": name + ".pth", "key": key, "format": fmt, "tensors": tensors}
    return path


def trained_state_dict(model):
    # One training-mode forward pass so that batch norm statistics (and num_batches_tracked) are not
    # their initial zeros and ones.
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    return model.state_dict()


# torchvision models with random weights, saved as torch.save(model.state_dict()) does.
for arch in ("resnet18", "mobilenet_v2"):
    sd = trained_state_dict(getattr(torchvision.models, arch)(weights=None))
    case(arch, sd, sd)

# Every storage type, special values, scalars and empty tensors.
half_specials = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.1e-5, 6e-8, 3e-7, float("inf"), float("-inf"),
                              float("nan")], dtype=torch.float16)
bits = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
dtypes = collections.OrderedDict([
    ("f32", torch.randn(3, 4)),
    ("f16", torch.randn(5, 3).half()),
    ("f16_specials", half_specials),
    ("f16_all_bit_patterns", bits.clone().view(torch.float16)),
    ("bf16", torch.randn(4, 3).bfloat16()),
    ("bf16_all_bit_patterns", bits.clone().view(torch.bfloat16)),
    ("f64", torch.randn(2, 3, dtype=torch.float64)),
    ("i64", torch.tensor([0, -1, 2**40, -(2**62)], dtype=torch.int64)),
    ("i32", torch.randint(-1000, 1000, (2, 2), dtype=torch.int32)),
    ("i16", torch.randint(-1000, 1000, (3,), dtype=torch.int16)),
    ("i8", torch.randint(-100, 100, (3,), dtype=torch.int8)),
    ("u8", torch.randint(0, 255, (2, 5), dtype=torch.uint8)),
    ("bool", torch.tensor([True, False, True])),
    ("scalar", torch.tensor(3.25)),
    ("empty", torch.zeros(0, 3)),
    ("five_dims", torch.randn(2, 1, 3, 1, 2)),
])
case("dtypes", dtypes, dtypes)

# Views: transposes, slices with offsets and steps, rows, expansions, and storages shared by several
# tensors (tied weights). torch.save keeps the views: one storage, each tensor's offset and strides.
base = torch.randn(6, 8)
half_base = torch.randn(5, 7).half()
tied = torch.randn(4, 4)
views = collections.OrderedDict([
    ("base", base),
    ("transposed", base.t()),
    ("slice", base[2:5, 1:7:2]),
    ("row", base[3]),
    ("column", base[:, 5]),
    ("permuted", torch.randn(2, 3, 4).permute(2, 0, 1)),
    ("expanded", torch.randn(1, 3).expand(4, 3)),
    ("half_transposed", half_base.t()),
    ("half_slice", half_base[1:, ::3]),
    ("tied_a", tied),
    ("tied_b", tied),
    ("tied_view", tied.view(2, 8)),
])
case("views", views, views)
case("views_legacy", views, views, fmt="legacy", _use_new_zipfile_serialization=False)
case("views_protocol4", views, views, pickle_protocol=4)
case("dtypes_legacy", dtypes, dtypes, fmt="legacy", _use_new_zipfile_serialization=False)

# What fovea's safetensors reader takes (F32, F16, BF16, I64, I32, U8), for scripts/torch_export.py.
export_mix = collections.OrderedDict([
    ("f32", torch.randn(4, 3)),
    ("f16", torch.randn(2, 5).half()),
    ("f16_view", half_base.t()),
    ("bf16", torch.randn(3, 2, 2).bfloat16()),
    ("i64", torch.tensor(12345, dtype=torch.int64)),
    ("i32", torch.randint(-9, 9, (4,), dtype=torch.int32)),
    ("u8", torch.randint(0, 255, (3, 3), dtype=torch.uint8)),
])
case("export_mix", export_mix, export_mix)

# Parameters (pickled through torch._utils._rebuild_parameter), as a dict of them.
params = collections.OrderedDict([("w", torch.nn.Parameter(torch.randn(3, 2))), ("b", torch.nn.Parameter(torch.randn(3)))])
case("parameters", params, params)

# Checkpoints that wrap a state_dict, with simple values beside it.
small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).state_dict()
case("checkpoint_state_dict", {"epoch": 7, "lr": 0.125, "arch": "tiny", "best": [0.5, 0.75], "big": 2**40,
                               "neg": -5, "done": False, "none": None, "state_dict": small}, small, key="state_dict")
case("checkpoint_model", {"model": small, "step": 100}, small, key="model")

# The same archive with its entries deflated (zip tools, or torch's writer elsewhere, may compress).
src = os.path.join(out, "dtypes.pth")
deflated = os.path.join(out, "dtypes_deflated.pth")
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
        zout.writestr(info.filename, zin.read(info.filename))
manifest["cases"]["dtypes_deflated"] = dict(manifest["cases"]["dtypes"], file="dtypes_deflated.pth")


# Hostile: objects whose unpickling would run a command, written by torch.save itself at protocols
# 2 (GLOBAL) and 4 (STACK_GLOBAL). The command would create the marker file; the test checks it never exists.
marker = os.path.join(tempfile.gettempdir(), "fovea_pth_test_pwned_marker")
manifest["marker"] = marker


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + marker,))


class EvilEval:
    def __reduce__(self):
        return (eval, ("print('pwned')",))


for proto in (2, 4):
    name = f"evil_system_p{proto}"
    torch.save({"w": torch.randn(2), "x": Evil()}, os.path.join(out, name + ".pth"), pickle_protocol=proto)
    manifest["hostile"][name] = {"file": name + ".pth", "global": f"{os.system.__module__}.system",
                                 "opcode": "GLOBAL" if proto == 2 else "STACK_GLOBAL"}
torch.save({"x": EvilEval()}, os.path.join(out, "evil_eval.pth"))
# (protocol 2 writes Python 3's builtins under their Python 2 name)
manifest["hostile"]["evil_eval"] = {"file": "evil_eval.pth", "global": "__builtin__.eval", "opcode": "GLOBAL"}
torch.save({"w": torch.randn(2), "opt": torch.optim.SGD([torch.nn.Parameter(torch.randn(2))], lr=0.1)},
           os.path.join(out, "foreign_object.pth"))
manifest["hostile"]["foreign_object"] = {"file": "foreign_object.pth", "global": "torch.optim.sgd.SGD",
                                         "opcode": "GLOBAL"}

# scripts/torch_export.py, run as a command.
export_script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "torch_export.py")
manifest["exports"] = {}
for name, args in {
    "mix": ["--pth", "export_mix.pth"],
    "mobilenet_pth": ["--pth", "mobilenet_v2.pth"],
    "mobilenet_model": ["--model", "mobilenet_v2", "--weights", "mobilenet_v2.pth"],
    "bf16": ["--model", "mobilenet_v2", "--seed", "3", "--dtype", "bfloat16"],
    "evil": ["--pth", "evil_system_p2.pth"],
    "mismatch": ["--model", "resnet34", "--weights", "resnet18.pth"],
}.items():
    args = [os.path.join(out, a) if a.endswith(".pth") else a for a in args] + ["--out", os.path.join(out, name + ".safetensors")]
    run = subprocess.run([sys.executable, export_script] + args, capture_output=True, text=True)
    manifest["exports"][name] = {"args": " ".join(args), "returncode": run.returncode, "output": run.stdout + run.stderr,
                                 "file": name + ".safetensors"}

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
