// Threads of the CPU reference. One level of parallelism: OpenMP threads over images, channels or
// output blocks, each calling single-threaded OpenBLAS (set programmatically on first use: an
// OpenBLAS pool on top of OpenMP oversubscribes the cores and runs several times slower, whatever
// OPENBLAS_NUM_THREADS says). Results are bitwise reproducible for given inputs; reductions are
// ordered by fixed chunks, so for batches >= 2 they do not depend on the thread count either.
#pragma once

namespace fovea::ref {

// Threads for subsequent fovea::ref calls from this thread (omp_set_num_threads); n >= 1.
void set_num_threads(int n);
// Threads the next parallel region would use (omp_get_max_threads).
int num_threads();

}  // namespace fovea::ref
