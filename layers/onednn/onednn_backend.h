// Backend 'onednn': the onednn slots of the ops' dispatch stubs on oneDNN (Debian's libdnnl-dev 2.6), the CPU's
// counterpart of backend cudnn on cuda. This header holds what users of the backend set and ask (settings, cache
// statistics, the library version and the CPU code it runs); it has no oneDNN types, so any file may include
// it. The implementations (layers/onednn/*.cpp) are the module libfovea_onednn.so, built only when CMake
// finds oneDNN 2.x (FOVEA_HAVE_ONEDNN), which a program loads the first time it asks for backend onednn
// (core/library_module.h); they register their slots while it loads.
//   conv2d      forward (bias fused), backward data, backward weights
//   linear      inner product forward (bias fused), backward data, backward weights
//   pooling     max (indices kept in our format), average (either padding rule), global average; fwd + bwd
//   softmax     softmax and log-softmax, fwd + bwd
//   at --precision bf16 (Context::precision): conv2d and linear, fwd + both gradients, on oneDNN's BF16
//               kernels (onednn_precision.cpp); tf32 and fp16 run the reference
//   batch norm  training and eval, fwd + bwd, and the conv bias gradient: fovea's own vectorised loops
//               (onednn_batchnorm.cpp), not oneDNN's: on plain NCHW oneDNN 2.6 has batch norm only on its
//               generic kernel (slower than the reference) and its reduction only as a reference kernel
// Everything else (activations, cross-entropy, dropout, optimizers, residual add, fills, LRN, ...) runs the
// reference under backend onednn (DispatchStub's fallback), as PyTorch runs its own code beside oneDNN. The
// activations on oneDNN on plain NCHW made a training step slower than the reference's (onednn_ops.cpp).
//
// The default backend on cpu of `fovea train` and `fovea eval` (--backend auto, apps/flags.h) when the module
// loads; the reference (backend custom) otherwise, and always for the C++ API's default Context and the tests.
//
// Memory formats. The stubs take plain pointers (NCHW, KCRS, row-major), so every call starts and ends in
// plain formats. Convolutions let oneDNN choose its blocked formats (nChw16c, OIhw16i16o, ...: the only ones
// its direct AVX-512/AVX2 kernels take) and reorder at the edges of the call, into scratch from
// Exec::workspace: a train step of resnet20 and mnist_cnn (batch 64, with batch norm and activations on oneDNN
// too) ran 1.2-1.3x faster so than with oneDNN's plain-format (GEMM-based) convolutions, reorders included
// (fovea bench --suites train-step, on a loaded 2-core AVX-512 machine). Keeping the blocked formats between layers
// would save those reorders but needs a tensor that knows its layout (not in fovea yet): the next step. Pooling,
// softmax and inner product run on the plain formats directly (memory-bound, or GEMM-based either way): a reorder would
// cost what they do.
//
// Caching: one primitive (with its reorders and memory objects) per op, shape, settings and thread count,
// created on first use and kept per thread; later calls only swap the data pointers. oneDNN's JIT compiles
// a kernel once per primitive. Nothing grows with the number of calls (cache_stats()).
//
// Numerics: float32 throughout (oneDNN's default fpmath mode: no implicit bf16). Sums run in oneDNN's order,
// not the reference's, so results match the reference to float32 rounding (rel L2 <= 1e-5), not bitwise.
// Deterministic: for a fixed thread count the same inputs give the same bits (oneDNN's CPU primitives do not
// use atomics; tests/op_registry_test.cpp, OnednnModule); a different thread count can change the bits of
// reductions (backward weights), unlike the reference.
//
// Threads: oneDNN here is built on OpenMP (libgomp, like the reference): a call uses omp_get_max_threads() of
// the calling thread (`--threads`, fovea::ref::set_num_threads).
#pragma once
#include <cstdint>
#include <string>

#include "core/dispatch.h"

namespace fovea::onednn {

// "2.6.3, CPU ISA avx2, 2 OpenMP threads", or why there is none (the module's status). Loads the module.
std::string runtime_version();

// ---------------------------------------------------------------- settings (per thread)

struct Settings {
  // Convolutions in oneDNN's blocked formats with reorders at the edges of each call (true), or on the plain
  // formats (oneDNN then runs its GEMM-based convolutions): for measuring the difference.
  bool blocked_conv_formats = true;
};
// This thread's settings (the module reads them at each call).
Settings& settings();

// ---------------------------------------------------------------- cache statistics and implementation names

struct CacheStats {
  int64_t primitives = 0;  // primitives created so far, all threads (reorders included)
  int64_t plans = 0;       // cache entries (one per op, shape, settings and thread count), all threads
  int64_t calls = 0;       // calls served by a cached plan
};
CacheStats cache_stats();

// oneDNN's name of the implementation the cached primitive of the latest call of `stub` on this thread runs
// ("jit:avx2", "gemm:jit", ...), for `fovea bench` notes and tests; "" when none ran yet.
std::string last_implementation(const char* stub);

// The module fills this table while it loads; the functions above (layers/ops/onednn_backend.cpp, always
// linked) load the module and call through it.
struct ModuleApi {
  std::string (*runtime_version)() = nullptr;
  CacheStats (*cache_stats)() = nullptr;
  std::string (*last_implementation)(const char*) = nullptr;
};
ModuleApi& module_api();

}  // namespace fovea::onednn
