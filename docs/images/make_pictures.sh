#!/usr/bin/env bash
# Makes the README's pictures of `fovea filter` and `fovea viz` in docs/images/.
#   docs/images/make_pictures.sh BUILD_DIR DATA_DIR [CHECKPOINT]
# DATA_DIR holds cifar-10-lossy/test_batch.bin.xz (or test_batch.bin) and mnist/t10k-images-idx3-ubyte.gz.
# Without CHECKPOINT it trains mnist_cnn for 2 epochs on the CPU first (about 15 minutes on 2 cores).
set -euo pipefail
build=${1:?usage: make_pictures.sh BUILD_DIR DATA_DIR [CHECKPOINT]}
data=${2:?usage: make_pictures.sh BUILD_DIR DATA_DIR [CHECKPOINT]}
ckpt=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
fovea="$build/fovea"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Filters: a 3x3 montage of CIFAR-10 test images (96x96), every named kernel, true convolution.
batch="$data/cifar-10-lossy/test_batch.bin"
[[ -f $batch ]] || { xz -dc "$batch.xz" > "$tmp/test_batch.bin"; batch="$tmp/test_batch.bin"; }
python3 "$here/sample_images.py" cifar-montage "$batch" "$tmp/montage.png"
for k in identity sobel-x sobel-y sobel-magnitude laplacian outline emboss sharpen box-blur gaussian; do
  values=clamp
  case $k in sobel-x|sobel-y|laplacian) values=normalize ;; esac  # signed results: zero becomes mid-grey
  "$fovea" filter "$tmp/montage.png" "$here/filter-$k.png" --kernel "$k" --values "$values"
done

# What a trained MNIST CNN sees: its 32 first-layer filters, and the 32 and 64 channels after the
# two conv+relu layers for the first test digit (a 7).
if [[ -z $ckpt ]]; then
  "$fovea" train --dataset mnist --data "$data/mnist" --model mnist_cnn --epochs 2 --device cpu --out "$tmp/run" --quiet
  ckpt="$tmp/run/checkpoint.safetensors"
fi
python3 "$here/sample_images.py" mnist-digit "$data/mnist/t10k-images-idx3-ubyte.gz" 0 "$here/viz-digit.png"
"$fovea" viz "$ckpt" --filters "$here/viz-filters.png"
"$fovea" viz "$ckpt" --activations "$here/viz-digit.png" --layer 1 "$here/viz-layer1.png"
"$fovea" viz "$ckpt" --activations "$here/viz-digit.png" --layer 3 "$here/viz-layer3.png"
du -ch "$here"/*.png | tail -1
