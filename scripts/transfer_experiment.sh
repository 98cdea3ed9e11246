#!/usr/bin/env bash
# The transfer-learning experiment of the README (issue 15): pretrain a small ResNet on CIFAR-10 classes 0-4,
# then learn classes 5-9 from only 100 training images per class (a PNG folder dataset), three ways:
#   scratch     the same network, randomly initialised
#   fine-tuned  initialised from the pretrained network, new head, the whole network trains (backbone at a 2.5x
#               lower learning rate: 0.02, the head 0.05)
#   frozen      initialised from the pretrained network, new head, everything before it frozen (batch norms in
#               eval mode): only the 5-class linear classifier learns
# and scores each on all 5000 CIFAR-10 test images of classes 5-9, with its wall time.
#
#   scripts/transfer_experiment.sh [CIFAR10_DIR [WORK_DIR]]
#
# CIFAR10_DIR: the CIFAR-10 binary batches (default /work/shared/data/cifar-10-lossy); WORK_DIR: where the PNG
# folders and runs go (default a new temporary folder). FOVEA: the binary (default build/fovea).
# CIFAR10_DIR may hold the batches xz-compressed (data_batch_1.bin.xz, ...): they are decompressed into WORK_DIR.
# Settings (environment): PRE_EPOCHS (default 3), PRE_SUBSET (training images of classes 0-4 for pretraining,
# default 8000), EPOCHS (default 15, of the 500 images), THREADS (default 2).
set -euo pipefail

CIFAR=${1:-/work/shared/data/cifar-10-lossy}
WORK=${2:-$(mktemp -d /tmp/fovea-transfer-XXXXXX)}
FOVEA=${FOVEA:-build/fovea}
PRE_EPOCHS=${PRE_EPOCHS:-3}
PRE_SUBSET=${PRE_SUBSET:-8000}
EPOCHS=${EPOCHS:-15}
THREADS=${THREADS:-2}
SEED=${SEED:-1}

# A ResNet-8 for 32x32 images with torchvision's module names (so that --freeze layer2 reads as in PyTorch):
# a 3x3 stem, three stages of one basic block (16, 32, 64 channels; the second and third halve the size),
# global average pooling, the linear head fc. 78 k parameters.
block() {  # block WIDTH STRIDE
  echo "block(conv1=conv:$1:3:stride=$2:pad=1:bias=0,bn1=bn,relu,conv2=conv:$1:3:pad=1:bias=0,bn2=bn)"
}
MODEL="init=kaiming,conv1=conv:16:3:pad=1:bias=0,bn1=bn,relu=relu"
MODEL+=",layer1=seq($(block 16 1)),layer2=seq($(block 32 2)),layer3=seq($(block 64 2)),avgpool=gap,fc=linear"

mkdir -p "$WORK"
echo "work folder: $WORK"
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# The accuracy in % of a checkpoint on all test images of its dataset (fovea eval --json).
accuracy() {
  "$FOVEA" eval --checkpoint "$1/checkpoint.safetensors" --device cpu --no-shifts --json "$1/eval.json" >"$1/eval.txt"
  sed -n 's/^ *"accuracy": \([0-9.e-]*\),*$/\1/p' "$1/eval.json" | awk '{ printf "%.2f", 100 * $1 }'
}

if [ ! -f "$CIFAR/test_batch.bin" ] && [ -f "$CIFAR/test_batch.bin.xz" ]; then
  mkdir -p "$WORK/cifar10"
  for f in "$CIFAR"/*.bin.xz; do xz -dc "$f" >"$WORK/cifar10/$(basename "$f" .xz)"; done
  cp "$CIFAR/batches.meta.txt" "$WORK/cifar10/" 2>/dev/null || true
  CIFAR=$WORK/cifar10
fi

# 1. The PNG folder dataset: 100 training images of each of classes 5-9, and all 5000 test images of those.
if [ ! -d "$WORK/data/val" ]; then
  "$FOVEA" dataset --dataset cifar10 --data "$CIFAR" --split train --format folder --classes 5-9 --per-class 100 \
    --out "$WORK/data/train"
  "$FOVEA" dataset --dataset cifar10 --data "$CIFAR" --split test --format folder --classes 5-9 \
    --out "$WORK/data/val"
fi

common=(--threads "$THREADS" --seed "$SEED" --device cpu --overwrite --log-every 1000000)

# 2. Pretraining on classes 0-4 of the CIFAR-10 training set (the built-in reader, --classes).
t0=$(now)
"$FOVEA" train --dataset cifar10 --data "$CIFAR" --classes 0-4 --subset "$PRE_SUBSET" --eval-subset 500 \
  --model "$MODEL" --epochs "$PRE_EPOCHS" --batch 64 --lr 0.1 --augment standard "${common[@]}" \
  --out "$WORK/pretrain" | tee "$WORK/pretrain.log"
t_pre=$(elapsed "$t0" "$(now)")
acc_pre=$(accuracy "$WORK/pretrain")

# 3. Classes 5-9 from 500 images, three ways.
# The folder dataset's own transforms: RandomResizedCrop + flip for training, resize + centre crop for testing
# (torchvision's standard ones, at 32 pixels). Each epoch scores 500 test images; the table, all 5000.
few=(--dataset folder --data "$WORK/data" --image-size 32 --epochs "$EPOCHS" --batch 50 --eval-subset 500
  "${common[@]}")
pre="$WORK/pretrain/checkpoint.safetensors"
run() {  # run NAME ARGS...
  local name=$1
  shift
  local t0
  t0=$(now)
  "$FOVEA" train "${few[@]}" --out "$WORK/$name" "$@" | tee "$WORK/$name.log"
  eval "t_$name=$(elapsed "$t0" "$(now)")"
  eval "acc_$name=$(accuracy "$WORK/$name")"
}
run scratch --model "$MODEL" --lr 0.05
run finetuned --model "$MODEL" --init-from "$pre" --replace-head --lr 0.05 --lr-backbone 0.02
run frozen --model "$MODEL" --init-from "$pre" --replace-head --freeze layer3 --lr 0.05

echo "fine-tuned, per class:"
sed -n '/per-class accuracy/,/^$/p' "$WORK/finetuned/eval.txt"

echo
echo "CIFAR-10 classes 5-9, 100 training images per class, scored on the 5000 test images of those classes"
printf "%-34s %10s %10s\n" "variant" "accuracy" "train (s)"
printf "%-34s %9s%% %10s   (on the 5000 test images of classes 0-4)\n" "pretraining on classes 0-4" "$acc_pre" "$t_pre"
printf "%-34s %9s%% %10s\n" "from scratch" "$acc_scratch" "$t_scratch"
printf "%-34s %9s%% %10s\n" "fine-tuned (backbone lr 0.02)" "$acc_finetuned" "$t_finetuned"
printf "%-34s %9s%% %10s\n" "frozen backbone (--freeze layer3)" "$acc_frozen" "$t_frozen"
