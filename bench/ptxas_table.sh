#!/usr/bin/env bash
# Resource usage of every kernel in kernels/*.cu as ptxas reports it, for sm_80 and sm_90:
# a markdown table (kernel, arch, registers, shared memory, stack, spill stores/loads) on stdout,
# or in the file given as the first argument. Needs nvcc, no GPU.
#
#   bench/ptxas_table.sh                 # table on stdout
#   bench/ptxas_table.sh ptxas.md        # table in ptxas.md
#   ARCHS="90" bench/ptxas_table.sh      # other architectures (default "80 90")
#
# Spills should stay at zero; a kernel that spills explains why in a comment next to it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
archs=${ARCHS:-"80 90"}
out=${1:-/dev/stdout}
[[ -x "$nvcc" ]] || { echo "ptxas_table.sh: nvcc not found (set NVCC)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gencode=()
for a in $archs; do gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done

# The flags of cmake/FoveaKernels.cmake's nvcc build; one nvcc per file, files in parallel.
compile() {
  local src=$1 log=$2
  "$nvcc" -std=c++20 -O3 --expt-relaxed-constexpr -DFOVEA_KERNEL_NS=cuda_kernels -DFOVEA_HAVE_CUDA=1 \
    -I"$root" "${gencode[@]}" -Xptxas -v -c "$src" -o /dev/null >"$log" 2>&1 || {
    echo "ptxas_table.sh: nvcc failed on $src:" >&2
    cat "$log" >&2
    return 1
  }
}
pids=()
for src in "$root"/kernels/*.cu; do
  compile "$src" "$work/$(basename "$src").log" &
  pids+=($!)
  # At most as many compilers as cores.
  while (($(jobs -rp | wc -l) >= $(nproc))); do wait -n || true; done
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
((status == 0)) || exit 1

# ptxas prints, per entry function:
#   ptxas info    : Compiling entry function '_ZN...' for 'sm_90'
#   ptxas info    : Function properties for _ZN...
#       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
#   ptxas info    : Used 48 registers, used 1 barriers, 8704 bytes smem, ...
for log in "$work"/*.log; do
  file=$(basename "$log" .log)
  awk -v file="$file" '
    /Compiling entry function/ {
      match($0, /function \047[^\047]+\047/); fn = substr($0, RSTART + 10, RLENGTH - 11)
      match($0, /for \047sm_[0-9a-z]+\047/); arch = substr($0, RSTART + 5, RLENGTH - 6)
      stack = "?"; sst = "?"; sld = "?"
    }
    /bytes stack frame/ { stack = $1; sst = $5; sld = $9 }
    /Used [0-9]+ registers/ {
      regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
      smem = 0
      if (match($0, /[0-9]+ bytes smem/)) { smem = substr($0, RSTART, RLENGTH); sub(/ bytes smem/, "", smem) }
      print file "\t" fn "\t" arch "\t" regs "\t" smem "\t" stack "\t" sst "\t" sld
    }' "$log"
done >"$work/rows.tsv"

# Readable kernel names: demangled (cu++filt or binutils' c++filt), without namespaces and parameter lists.
demangle=cat
for d in "$(dirname "$nvcc")/cu++filt" c++filt; do
  if command -v "$d" >/dev/null 2>&1; then demangle=$d; break; fi
done
cut -f2 "$work/rows.tsv" | "$demangle" |
  sed -E 's/fovea::cuda_kernels::(gemm::)?//g; s/\(anonymous namespace\):://g; s/TileConfig/Tile/g; s/^void //' |
  sed -E 's/\(([^()]|\([^()]*\))*\)$//' >"$work/names.txt"

{
  echo "| file | kernel | arch | registers | shared memory (bytes) | stack (bytes) | spill stores | spill loads |"
  echo "|---|---|---|---:|---:|---:|---:|---:|"
  paste "$work/names.txt" "$work/rows.tsv" |
    awk -F'\t' '{ printf "| %s | `%s` | %s | %s | %s | %s | %s | %s |\n", $2, $1, $4, $5, $6, $7, $8, $9 }' |
    sort -t'|' -k2,2 -k3,3 -k4,4
  total=$(wc -l <"$work/rows.tsv")
  spilling=$(awk -F'\t' '$7 != 0 || $8 != 0' "$work/rows.tsv" | wc -l)
  maxregs=$(cut -f4 "$work/rows.tsv" | sort -n | tail -1)
  echo
  echo "$total kernel builds ($archs); $spilling with spills; most registers: $maxregs."
} >"$out"
