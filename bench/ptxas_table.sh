#!/usr/bin/env bash
# Resource usage of every kernel in kernels/*.cu as ptxas reported it in the nvcc build, for each architecture the
# build targets: a markdown table (kernel, arch, registers, shared memory, stack, spill stores/loads) on stdout, or
# in the file given as the second argument. No GPU needed, no extra compile: the build keeps ptxas's report
# (cmake/ptxas_log.sh) and gathers it into BUILD/kernel_resources/fovea_kernels.tsv (cmake/FoveaPtxasTable.cmake),
# the table `fovea profile` reads too.
#
#   bench/ptxas_table.sh                       # build/, table on stdout
#   bench/ptxas_table.sh build-ci ptxas.md     # another build, table in ptxas.md
#
# CI's build targets sm_80 and sm_90 (-DCMAKE_CUDA_ARCHITECTURES="80;90"); the default build, the local GPU's
# architecture or 90. Spills should stay at zero; a kernel that spills explains why in a comment next to it.
set -euo pipefail

build=${1:-build}
out=${2:-/dev/stdout}
table="$build/kernel_resources/fovea_kernels.tsv"
[[ -s "$table" ]] || {
  echo "ptxas_table.sh: $table not found: build with nvcc first (scripts/build.sh; a build with -DFOVEA_WITH_CUDA=OFF has none)" >&2
  exit 1
}
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}

# Readable kernel names: demangled (cu++filt or binutils' c++filt), without namespaces and parameter lists.
demangle=cat
for d in "$(dirname "$nvcc")/cu++filt" c++filt; do
  if command -v "$d" >/dev/null 2>&1; then demangle=$d; break; fi
done
names=$(mktemp)
trap 'rm -f "$names"' EXIT
cut -f2 "$table" | "$demangle" |
  sed -E 's/fovea::cuda_kernels::(gemm::)?//g; s/\(anonymous namespace\):://g; s/TileConfig/Tile/g; s/^void //' |
  sed -E 's/\(([^()]|\([^()]*\))*\)$//' >"$names"

{
  echo "| file | kernel | arch | registers | shared memory (bytes) | stack (bytes) | spill stores | spill loads |"
  echo "|---|---|---|---:|---:|---:|---:|---:|"
  # table columns: arch, mangled name, registers, shared, stack, spill stores, spill loads, source file
  paste "$names" "$table" |
    awk -F'\t' '{ printf "| %s | `%s` | %s | %s | %s | %s | %s | %s |\n", $9, $1, $2, $4, $5, $6, $7, $8 }' |
    sort -t'|' -k2,2 -k3,3 -k4,4
  total=$(wc -l <"$table")
  spilling=$(awk -F'\t' '$6 != 0 || $7 != 0' "$table" | wc -l)
  maxregs=$(cut -f3 "$table" | sort -n | tail -1)
  archs=$(cut -f1 "$table" | sort -u | tr '\n' ' ')
  echo
  echo "$total kernel builds (${archs% }); $spilling with spills; most registers: $maxregs."
} >"$out"
