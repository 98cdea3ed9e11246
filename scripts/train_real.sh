#!/usr/bin/env bash
# The real-data training runs whose results the README reports (CPU device; long on 2 cores).
#   scripts/train_real.sh [mnist|fashion|cifar|all] [RUNS_DIR]
# Data (not part of fovea; see ../shared/data/README.md): MNIST IDX .gz files in $MNIST_DIR,
# Fashion-MNIST in $FASHION_DIR (Debian: apt-get install dataset-fashion-mnist), CIFAR-10 binary
# batches in $CIFAR_DIR (.bin, or .bin.xz which are decompressed into RUNS_DIR/cifar-10 first).
# Each run writes RUNS_DIR/<name>/ (metrics, curves.png, checkpoints) and RUNS_DIR/<name>/eval.json
# (test accuracy, per-class accuracy, confusion matrix, accuracy on test images shifted by 1-3 pixels).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
which="${1:-all}"
runs="${2:-runs}"
FOVEA="${FOVEA:-$here/build/fovea}"
MNIST_DIR="${MNIST_DIR:-$here/../shared/data/mnist}"
FASHION_DIR="${FASHION_DIR:-/usr/share/datasets/fashion-mnist}"
CIFAR_DIR="${CIFAR_DIR:-$here/../shared/data/cifar-10-lossy}"
THREADS="${THREADS:-0}"  # 0: all cores; 1 is faster on a machine busy with other work
mkdir -p "$runs"

run() {  # name, then the arguments of fovea train
  local name="$1" data_dir="" prev=""
  shift
  for a in "$@"; do [[ "$prev" == --data ]] && data_dir="$a"; prev="$a"; done
  echo "== $name: $FOVEA train $* --device cpu --threads $THREADS --out $runs/$name"
  "$FOVEA" train "$@" --device cpu --threads "$THREADS" --out "$runs/$name" --overwrite
  "$FOVEA" eval --device cpu --checkpoint "$runs/$name/checkpoint.safetensors" --json "$runs/$name/eval.json"
  # The same checkpoint in PyTorch, when Debian's python3-torch is installed: the same predictions (accuracy and
  # confusion matrix).
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 "$here/scripts/check_checkpoint_torch.py" "$runs/$name/checkpoint.safetensors" --data "$data_dir" \
      --fovea-eval "$runs/$name/eval.json"
  fi
}

if [[ "$which" == mnist || "$which" == all ]]; then
  # Course notes: 99.04% after 14 epochs (Keras, Adadelta).
  run mnist_cnn-mnist --dataset mnist --data "$MNIST_DIR" --model mnist_cnn --epochs 14 --batch 128 \
    --optimizer adamw --lr 0.001 --weight-decay 0.01 --seed 1
fi
if [[ "$which" == fashion || "$which" == all ]]; then
  # Course notes: 92.55% after 14 epochs.
  run mnist_cnn-fashion --dataset fashion-mnist --data "$FASHION_DIR" --model mnist_cnn --epochs 14 --batch 128 \
    --optimizer adamw --lr 0.001 --weight-decay 0.01 --augment flip --seed 1
fi
if [[ "$which" == cifar || "$which" == all ]]; then
  # Caffe reports 75% for cifar10_quick on the original images; these are JPEG-decoded.
  data="$CIFAR_DIR"
  if [[ ! -e "$data/test_batch.bin" && -e "$data/test_batch.bin.xz" ]]; then
    data="$runs/cifar-10"
    mkdir -p "$data"
    for f in "$CIFAR_DIR"/*.bin.xz; do
      out="$data/$(basename "$f" .xz)"
      [[ -e "$out" ]] || { xz -dc "$f" > "$out.tmp" && mv "$out.tmp" "$out"; }
    done
    cp -f "$CIFAR_DIR/batches.meta.txt" "$data/" 2>/dev/null || true
  fi
  run cifar_quick-cifar10 --dataset cifar10 --data "$data" --model cifar_quick --epochs ${CIFAR_EPOCHS:-30} --batch 100 \
    --optimizer sgd --lr 0.01 --momentum 0.9 --weight-decay 0.004 --schedule cosine --augment standard --seed 1
fi
