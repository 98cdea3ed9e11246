#!/usr/bin/env bash
# The emulator's memory metrics and the cost model for fovea's hot kernels at CIFAR/ResNet-20 shapes, as the
# markdown table of the README ("What the emulator says about our hot kernels"). Needs a build with the
# emulator's instrumented kernels (any build but the sanitizer one); no GPU. About 20 s on 2 cores.
#
#   scripts/hot_kernel_metrics.sh [BUILD_DIR] [GPU]      # defaults: build, h100
set -euo pipefail
build=${1:-build}
gpu=${2:-h100}
fovea="$build/fovea"
[[ -x "$fovea" ]] || { echo "hot_kernel_metrics.sh: $fovea not found (build first)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() {  # run NAME ARGS...: one `fovea profile`, its JSON kept under NAME
  local name=$1; shift
  "$fovea" profile "$@" --pass all --gpu "$gpu" --json "$work/$name.json" >/dev/null
}
run conv conv2d --x 128,16,32,32 --w 16,16,3,3 --attr pad=1
run conv_s2 conv2d --x 128,16,32,32 --w 32,16,3,3 --attr stride=2 pad=1
run linear linear --x 128,512 --w 256,512
run maxpool maxpool2d --x 128,32,32,32 --attr kernel=3 stride=2
run batchnorm batchnorm2d --x 128,32,32,32
run softmax softmax --x 128,10

python3 - "$work" "$gpu" <<'PY'
import json, os, re, sys
work, gpu = sys.argv[1], sys.argv[2]
print(f"| op, pass, shape | kernel | regs, occupancy | global loads: sectors/req (ideal) | shared: wavefronts/req (ideal) | modelled {gpu} us (bound; fp32 / dram / L1 limits) |")
print("|---|---|---|---|---|---|")
def short(name):
    name = re.sub(r"fovea::emu_kernels::|\(anonymous namespace\)::|\{anonymous\}::|gemm::", "", name)
    return name.replace("TileConfig", "Tile")
def ideal_sectors(s):  # a warp-wide request of `bytes_per_lane` per active lane, perfectly coalesced
    lanes = s["lanes"] / s["requests"]
    return max(1.0, lanes * s["bytes_per_lane"] / 32)
def ideal_wavefronts(s):
    lanes = s["lanes"] / s["requests"]
    return max(1.0, lanes * s["bytes_per_lane"] / 128)
for f in ["conv", "conv_s2", "linear", "maxpool", "batchnorm", "softmax"]:
    j = json.load(open(os.path.join(work, f + ".json")))
    for sec in j["sections"]:
        for k in sec["kernels"]:
            m = k["model"]
            if m["predicted_us"] <= m["t_launch_us"] and len(sec["kernels"]) > 1:
                continue  # tiny helper kernels (finalize, split-K reduce): launch-bound, left out
            loads = [s for s in k["sites"] if s["space"] == "global" and s["op"] == "load"]
            shared = [s for s in k["sites"] if s["space"] == "shared"]
            big = sorted(loads, key=lambda s: -s["bytes"])[:2]
            g = "; ".join(f"{s['location'].split('/')[-1]}: {s['sectors']/s['requests']:.2f} ({ideal_sectors(s):.2f})" for s in big)
            sh = "; ".join(f"{s['location'].split('/')[-1]} {s['op']}: {s['wavefronts']/s['requests']:.2f} ({ideal_wavefronts(s):.2f})"
                           for s in sorted(shared, key=lambda s: -s["bytes"])[:2]) or "-"
            regs = f"{m['registers']}, {m['blocks_per_sm']} blocks/SM ({100*m['occupancy']:.0f}%)" if m["registers"] else "unknown"
            title = sec["title"].replace("stride 1,1 pad 1,1 dilation 1,1 groups 1", "pad 1")
            print(f"| {title} | `{short(k['name'])}` | {regs} | {g or '-'} | {sh} | {m['predicted_us']:.1f} ({m['bound']}; "
                  f"{m['t_fp32_us']:.1f} / {m['t_dram_us']:.1f} / {m['t_l1_us']:.1f}) |")
PY
