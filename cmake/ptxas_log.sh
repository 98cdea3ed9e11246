#!/usr/bin/env bash
# Compiler launcher of the nvcc build of kernels (cmake/FoveaKernels.cmake): runs the compile command that follows
# (ccache first when configured), keeps what `ptxas -v` prints about each kernel (registers, shared memory, stack)
# in OBJECT.ptxas beside the object file, for cmake/FoveaPtxasTable.cmake and `fovea profile`, and passes every
# other line of the compiler's stderr on.
out=
prev=
for a in "$@"; do
  [[ $prev == -o ]] && out=$a
  prev=$a
done
log=$(mktemp)
"$@" 2>"$log"
rc=$?
pattern='ptxas info|bytes stack frame'
if [[ -n $out && $rc -eq 0 ]]; then
  grep -E "$pattern" "$log" >"$out.ptxas.tmp"
  mv "$out.ptxas.tmp" "$out.ptxas"
fi
grep -vE "$pattern" "$log" >&2
rm -f "$log"
exit $rc
