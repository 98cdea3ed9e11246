#!/usr/bin/env bash
# The check to run on a machine with an NVIDIA GPU, in one go:
#   1. configure and build for the GPU's own architecture (CMAKE_CUDA_ARCHITECTURES=native)
#   2. every test, label by label (emu, gpu, ref, and the rest), then the tensor-core semantics one by one
#   3. the kernel test binaries under compute-sanitizer memcheck and racecheck
#   4. fovea bench --device cuda --shapes cifar (ours vs cuDNN / cuBLAS and the roofline), and --suites precision
#      (TF32/BF16/FP16: ours vs cuBLASLt / cuDNN, the tensor-core roofline, issue 16's design targets)
#   5. resnet20 on CIFAR-10 for a few epochs with each backend (custom, cudnn)
#   6. the emulator's cost model against this GPU: `fovea profile ... --measure cuda` for the hot ops at
#      CIFAR shapes and a training step; the modelled and the measured times side by side in
#      model_vs_measured.csv, for calibrating core/emu/cost_model.h
# and one report in --out: report.md (what passed and the numbers), report.csv (one line per step),
# report.png (the bench chart). Exit status 0 only when nothing failed.
#
# Without a GPU it runs the parts that can run (a CPU-only build, the tests, fovea bench --device cpu)
# and marks the rest SKIP with the reason. --dry-run prints the commands without running anything.
#
#   bash scripts/gpu_check.sh --data ~/data/cifar10 [--epochs 3] [--out gpu-check] [--build-dir build-gpu]
#   bash scripts/gpu_check.sh --dry-run
#   bash scripts/gpu_check.sh --build-dir /work/build-x --targets "fovea bench_test" --ctest-regex bench_test
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build-gpu-check"
OUT="$ROOT/gpu-check"
DATA=""
EPOCHS=3
JOBS=$(nproc)
DRY=0
TARGETS=""       # empty: everything
CTEST_REGEX=""   # empty: every test
FORCE_NO_GPU=0

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --no-gpu) FORCE_NO_GPU=1 ;;
    --data) DATA=$2; shift ;;
    --epochs) EPOCHS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --build-dir) BUILD=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --targets) TARGETS=$2; shift ;;
    --ctest-regex) CTEST_REGEX=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

HAVE_GPU=0
if [ "$FORCE_NO_GPU" = 0 ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then HAVE_GPU=1; fi
REAL_GPU=$HAVE_GPU
[ "$DRY" = 1 ] && HAVE_GPU=1  # a dry run shows the plan for a GPU machine
mkdir -p "$OUT/logs"
CSV="$OUT/report.csv"
echo "step,status,seconds,detail" > "$CSV"
FAILED=0

# record STEP STATUS SECONDS DETAIL
record() {
  local detail=${4//\"/\'}
  echo "$1,$2,$3,\"$detail\"" >> "$CSV"
  printf '%-34s %-5s %6ss  %s\n' "$1" "$2" "$3" "$4"
  [ "$2" = FAIL ] && FAILED=$((FAILED + 1))
  return 0
}
skip() { record "$1" SKIP 0 "$2"; }

# step NAME LOGFILE CMD...: runs CMD (or prints it under --dry-run), records PASS/FAIL and the time.
step() {
  local name=$1 log=$2; shift 2
  if [ "$DRY" = 1 ]; then
    echo "[dry-run] $name: $*"
    record "$name" DRY 0 "$*"
    return 0
  fi
  local t0=$(date +%s)
  if "$@" > "$log" 2>&1; then
    record "$name" PASS $(( $(date +%s) - t0 )) "$(tail -n 1 "$log" | cut -c1-160)"
  else
    record "$name" FAIL $(( $(date +%s) - t0 )) "see $log: $(tail -n 1 "$log" | cut -c1-160)"
    return 1
  fi
}

echo "gpu_check: root $ROOT, build $BUILD, out $OUT, GPU: $([ $REAL_GPU = 1 ] && nvidia-smi -L | head -n 1 || echo none)"

# ---- 1. build
if [ "$HAVE_GPU" = 1 ]; then
  CMAKE_ARGS=(-DFOVEA_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native)
else
  CMAKE_ARGS=(-DFOVEA_WITH_CUDA=OFF)
fi
command -v ccache >/dev/null 2>&1 && CMAKE_ARGS+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
BUILT=1
step configure "$OUT/logs/configure.log" cmake -S "$ROOT" -B "$BUILD" -G Ninja "${CMAKE_ARGS[@]}" || BUILT=0
if [ "$BUILT" = 1 ]; then
  if [ -n "$TARGETS" ]; then
    # shellcheck disable=SC2086
    step build "$OUT/logs/build.log" cmake --build "$BUILD" -j "$JOBS" --target $TARGETS || BUILT=0
  else
    step build "$OUT/logs/build.log" cmake --build "$BUILD" -j "$JOBS" || BUILT=0
  fi
fi
FOVEA="$BUILD/fovea"

# ---- 2. tests by label
# Pull "N tests failed out of M" out of a ctest log.
ctest_summary() { grep -E "tests passed|No tests were found" "$1" | tail -n 1; }
if [ "$BUILT" = 1 ] || [ "$DRY" = 1 ]; then
  for label in emu gpu cudnn ref core data layers; do  # "slow" (real-data runs) is left out
    args=(--test-dir "$BUILD" -L "^${label}\$" --output-on-failure -j "$JOBS")
    [ -n "$CTEST_REGEX" ] && args+=(-R "$CTEST_REGEX")
    log="$OUT/logs/ctest_$label.log"
    if [ "$DRY" = 1 ]; then step "tests:$label" "$log" ctest "${args[@]}"; continue; fi
    t0=$(date +%s)
    ctest "${args[@]}" > "$log" 2>&1
    rc=$?
    summary=$(ctest_summary "$log")
    note=""
    [ "$label" = gpu ] && [ "$HAVE_GPU" = 0 ] && note=" (no GPU: these tests skip themselves)"
    if grep -q "No tests were found" "$log"; then record "tests:$label" SKIP $(( $(date +%s) - t0 )) "no tests with this label selected"
    elif [ $rc = 0 ]; then record "tests:$label" PASS $(( $(date +%s) - t0 )) "$summary$note"
    else record "tests:$label" FAIL $(( $(date +%s) - t0 )) "$summary; see $log"; fi
  done
else
  skip tests "the build failed"
fi

# ---- 2b. the emulator's claims about the hardware, which only a GPU can confirm: the __half/__nv_bfloat16 API
# bit for bit (NaN bits included), mma.sync fragment layouts and values (TF32 operands read as their top 19 bits,
# subnormal 16-bit inputs), ldmatrix, cp.async zero fill, cvt.rna.tf32.f32, and the tensor-core GEMM (the cuda
# cases of these suites; they also ran in tests:emu above, here they are reported one by one).
for suite in half_kernel_test tensor_core_test tc_gemm_kernel_test; do
  if [ "$HAVE_GPU" = 0 ] && [ "$DRY" = 0 ]; then skip "tensor-core:$suite" "no GPU: the emulator's tensor-core semantics are checked against the device"; continue; fi
  if [ ! -x "$BUILD/tests/$suite" ] && [ "$DRY" = 0 ]; then skip "tensor-core:$suite" "$BUILD/tests/$suite not built"; continue; fi
  step "tensor-core:$suite" "$OUT/logs/tensor_core_$suite.log" "$BUILD/tests/$suite" --gtest_filter='*cuda*' || true
done

# The multistage tensor-core GEMM (kernels/tc_gemm_multistage.cuh) in a row of its own. Only a GPU can say: cp.async
# zero fill with a partial src-size in LDGSTS, ldmatrix on the XOR-swizzled layout, the 96 KiB dynamic shared memory
# opt-in, and that the hardware's mma gives the simple kernel's bits (the same k-steps in the same order). The
# compute-sanitizer rows below run it too (racecheck: the 3-stage pipeline's single barrier per k-tile).
if [ "$HAVE_GPU" = 0 ] && [ "$DRY" = 0 ]; then skip "tensor-core:tc_gemm_multistage" "no GPU"
elif [ ! -x "$BUILD/tests/tc_gemm_kernel_test" ] && [ "$DRY" = 0 ]; then skip "tensor-core:tc_gemm_multistage" "$BUILD/tests/tc_gemm_kernel_test not built"
else step "tensor-core:tc_gemm_multistage" "$OUT/logs/tensor_core_tc_gemm_multistage.log" "$BUILD/tests/tc_gemm_kernel_test" --gtest_filter='*cuda_multistage*' || true
fi

# cuDNN and cuBLASLt at the tensor cores' precisions (layers/cudnn/cudnn_precision.cpp): conv2d and linear at tf32,
# bf16 and fp16 against the CPU reference of each precision within the bound derived in tests/cudnn_test.cpp, the
# raw-buffer calls of the precision benchmark (every listed cuDNN algorithm runs); they ran in tests:gpu above, here
# one row of their own. Never run before a GPU session: compiled only.
if [ "$HAVE_GPU" = 0 ] && [ "$DRY" = 0 ]; then skip "cudnn-precision" "no GPU: cuDNN/cuBLASLt at tf32/bf16/fp16 need a device"
elif [ ! -x "$BUILD/tests/cudnn_test" ] && [ "$DRY" = 0 ]; then skip "cudnn-precision" "$BUILD/tests/cudnn_test not built"
else step "cudnn-precision" "$OUT/logs/cudnn_precision.log" "$BUILD/tests/cudnn_test" --gtest_filter='*Precision*' || true
fi

# The implicit-GEMM tensor-core convolutions (kernels/conv2d_tc_igemm.cuh: fprop, dgrad, wgrad) in a row of their own:
# the 16-byte cp.async gather with zero fill at padding and image borders, the dgrad index map and its stride phases,
# split-K of fprop (the reduce adds the bias), dgrad and wgrad, the 128 x 64 block tile's bits equal to the 128 x 128
# one's, and the op-level route through NHWC copies, on the hardware's mma; the ResNet CIFAR shapes (TcConvSlow) run
# here too.
if [ "$HAVE_GPU" = 0 ] && [ "$DRY" = 0 ]; then skip "tensor-core:conv2d_tc_igemm" "no GPU"
elif [ ! -x "$BUILD/tests/tc_gemm_kernel_test" ] && [ "$DRY" = 0 ]; then skip "tensor-core:conv2d_tc_igemm" "$BUILD/tests/tc_gemm_kernel_test not built"
else step "tensor-core:conv2d_tc_igemm" "$OUT/logs/tensor_core_conv2d_tc_igemm.log" "$BUILD/tests/tc_gemm_kernel_test" --gtest_filter='*TcConv*cuda*:*PrecisionOps*cuda*' || true
fi

# ---- 3. compute-sanitizer on the kernel tests (their cuda cases)
SAN=""
command -v compute-sanitizer >/dev/null 2>&1 && SAN=compute-sanitizer
[ -z "$SAN" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && SAN=/usr/local/cuda/bin/compute-sanitizer
for tool in memcheck racecheck; do
  if [ "$HAVE_GPU" = 0 ] && [ "$DRY" = 0 ]; then skip "sanitizer:$tool" "no GPU: compute-sanitizer checks CUDA kernels on a device"; continue; fi
  if [ -z "$SAN" ] && [ "$DRY" = 0 ]; then skip "sanitizer:$tool" "compute-sanitizer not found"; continue; fi
  for bin in "$BUILD"/tests/*_kernel_test; do
    [ -x "$bin" ] || { [ "$DRY" = 1 ] || continue; }
    name=$(basename "$bin")
    step "sanitizer:$tool:$name" "$OUT/logs/sanitizer_${tool}_$name.log" \
      "${SAN:-compute-sanitizer}" --tool "$tool" --error-exitcode 1 "$bin" || true
  done
done

# ---- 4. fovea bench
if [ "$HAVE_GPU" = 1 ] || [ "$DRY" = 1 ]; then
  step bench:cuda "$OUT/logs/bench_cuda.log" "$FOVEA" bench --device cuda --shapes cifar --out "$OUT/bench" || true
else
  skip bench:cuda "no GPU"
  if [ -x "$FOVEA" ]; then
    step bench:cpu "$OUT/logs/bench_cpu.log" "$FOVEA" bench --device cpu --out "$OUT/bench" || true
  else
    skip bench:cpu "no fovea binary in $BUILD"
  fi
fi
[ -f "$OUT/bench/bench.png" ] && cp "$OUT/bench/bench.png" "$OUT/report.png"

# ---- 4b. fovea bench --suites precision: TF32/BF16/FP16 GEMM (4096^3, the nets' linear layers) and conv fprop/dgrad/
# wgrad (resnet20, resnet9 at batch 256), ours beside cuBLASLt and cuDNN's fastest algorithm, the fraction of the
# tensor-core peak, and issue 16's design targets as PASS/FAIL columns (bench-precision/precision.txt). A failed
# target does not fail the step; a row whose output disagrees with the anchor's does.
if [ "$HAVE_GPU" = 1 ] || [ "$DRY" = 1 ]; then
  step bench:precision "$OUT/logs/bench_precision.log" "$FOVEA" bench --device cuda --suites precision --reps 20 \
    --warmup 5 --out "$OUT/bench-precision" || true
elif [ -x "$FOVEA" ]; then
  step bench:precision:cpu "$OUT/logs/bench_precision_cpu.log" "$FOVEA" bench --device cpu --suites precision \
    --out "$OUT/bench-precision" || true
else
  skip bench:precision "no fovea binary in $BUILD"
fi

# ---- 5. resnet20 on CIFAR-10, each backend
declare -A ACC
for backend in custom cudnn; do
  if [ "$HAVE_GPU" = 0 ] && [ "$DRY" = 0 ]; then skip "train:resnet20:$backend" "no GPU (3 epochs of resnet20 on the CPU take hours)"; continue; fi
  if [ -z "$DATA" ] && [ "$DRY" = 0 ]; then skip "train:resnet20:$backend" "no --data DIR with CIFAR-10"; continue; fi
  log="$OUT/logs/train_$backend.log"
  if step "train:resnet20:$backend" "$log" "$FOVEA" train --model resnet20 --dataset cifar10 --data "${DATA:-DIR}" \
       --epochs "$EPOCHS" --backend "$backend" --device cuda --out "$OUT/runs/resnet20-$backend" --quiet && [ "$DRY" = 0 ]; then
    ACC[$backend]=$(grep -o "test accuracy [0-9.]*%" "$log" | tail -n 1)
  fi
done

# FP16 training with dynamic loss scaling on the GPU's tensor cores (issue 16's fp16 kernels, ops::amp_* kernels):
# two epochs of the built-in dataset from a scale of 2^20 (the first steps overflow and are skipped on the device),
# then the epoch lines report the scale and the skipped steps; emu ran the same code in tests:layers.
if [ "$HAVE_GPU" = 0 ] && [ "$DRY" = 0 ]; then skip "train:fp16-loss-scaling" "no GPU"
else step "train:fp16-loss-scaling" "$OUT/logs/train_fp16.log" "$FOVEA" train --device cuda --precision fp16 \
       --loss-scale dynamic:1048576 --loss-scale-growth-interval 50 --model mnist_cnn --subset 4096 --epochs 2 \
       --out "$OUT/runs/fp16" --overwrite || true
fi

# ---- 6. the cost model against the GPU (the model runs on the emulator, the same work is timed on the GPU)
MODEL_CSV="$OUT/model_vs_measured.csv"
echo "what,section,model_gpu,predicted_us,measured_us,ratio" > "$MODEL_CSV"
model_gpu=h100
[ "$REAL_GPU" = 1 ] && nvidia-smi -L | head -n 1 | grep -q "A100" && model_gpu=a100
profiles=(
  "conv2d --x 128,3,32,32 --w 32,3,5,5 --attr pad=2 --pass all"
  "conv2d --x 128,32,16,16 --w 32,32,5,5 --attr pad=2 --pass all"
  "conv2d --x 128,64,8,8 --w 64,64,3,3 --attr pad=1 --pass all"
  "linear --x 128,1024 --w 10,1024 --pass all"
  "maxpool2d --x 128,32,32,32 --attr kernel=3 --attr stride=2 --pass all"
  "batchnorm2d --x 128,64,16,16 --pass all"
  "softmax --x 128,10 --pass all"
  "train-step --model cifar_quick --batch 128"
)
for args in "${profiles[@]}"; do
  name="model:$(echo "$args" | tr ' ,=' '_..' | cut -c1-60)"
  json="$OUT/model/$(echo "$args" | tr ' ,=/' '_..-').json"
  mkdir -p "$OUT/model"
  if [ "$HAVE_GPU" = 0 ] && [ "$DRY" = 0 ]; then skip "$name" "no GPU: only the model side could run"; continue; fi
  # shellcheck disable=SC2086
  if step "$name" "$OUT/logs/$(basename "$json" .json).log" "$FOVEA" profile $args --gpu "$model_gpu" --measure cuda \
       --json "$json" && [ "$DRY" = 0 ]; then
    python3 - "$json" "$args" "$model_gpu" >> "$MODEL_CSV" <<'PY' || true
import json, sys
j = json.load(open(sys.argv[1]))
for s in j["sections"]:
    m = s.get("measured_us")
    ratio = s["predicted_us"] / m if m else ""
    what, title = sys.argv[2].replace(",", " "), s["title"].replace(",", " ")  # no commas inside fields
    print(f'{what},{title},{sys.argv[3]},{s["predicted_us"]:.2f},{m if m else ""},{ratio}')
PY
  fi
done

# ---- report
MD="$OUT/report.md"
{
  echo "# fovea GPU check"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with local changes)')"
  if [ "$REAL_GPU" = 1 ]; then
    echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader | head -n 1)"
  else
    echo "- GPU: none; only the CPU-possible parts ran, the rest is SKIP"
  fi
  [ "$DRY" = 1 ] && echo "- dry run: commands printed, nothing run"
  echo
  echo "| step | status | seconds | detail |"
  echo "|---|---|---|---|"
  tail -n +2 "$CSV" | while IFS=, read -r s st sec detail; do echo "| $s | $st | $sec | ${detail//\"/} |"; done
  echo
  for b in custom cudnn; do [ -n "${ACC[$b]:-}" ] && echo "- resnet20, $EPOCHS epochs, backend $b: ${ACC[$b]}"; done
  if [ "$(wc -l < "$MODEL_CSV")" -gt 1 ]; then
    echo
    echo "## The emulator's cost model against this GPU (a model: lower bounds; ratio = model / measured)"
    echo
    echo "| section | model GPU | predicted us | measured us | ratio |"
    echo "|---|---|---|---|---|"
    tail -n +2 "$MODEL_CSV" | while IFS=, read -r what sec g p m r; do echo "| $sec | $g | $p | $m | $r |"; done
  fi
  if [ -f "$OUT/bench/bench.txt" ]; then
    echo
    echo "## fovea bench"
    echo
    echo '```'
    cat "$OUT/bench/bench.txt"
    echo '```'
    echo
    echo "Chart: report.png; every row: bench/bench.csv, bench/bench.json."
  fi
  if [ -f "$OUT/bench-precision/precision.txt" ]; then
    echo
    echo "## fovea bench --suites precision (tensor cores: ours, cuBLASLt, cuDNN; design targets)"
    echo
    echo '```'
    cat "$OUT/bench-precision/precision.txt"
    echo '```'
  fi
} > "$MD"
echo "gpu_check: report in $MD, $CSV$([ -f "$OUT/report.png" ] && echo ", $OUT/report.png"); $FAILED step(s) failed"
[ "$FAILED" = 0 ]
