// fovea info: which devices this build can use and what they are.
#include <fmt/core.h>

#include <thread>

#include "apps/command.h"
#include "apps/flags.h"
#include "core/build_info.h"
#include "core/device.h"
#include "core/emu/emu.h"
#include "core/library_module.h"
#include "cpu_reference/blas.h"
#include "layers/cudnn/cudnn_backend.h"
#include "layers/onednn/onednn_backend.h"

namespace fovea::app {
namespace {

int run_info() {
  const BuildInfo& b = build_info();
  fmt::print("fovea {} (git {}), {} build, {}\n", b.version, b.git_revision, b.build_type, b.compiler);
  fmt::print("devices this build can use:\n");
  fmt::print("  cpu   the C++ reference (OpenBLAS + OpenMP), {} hardware threads\n",
             std::thread::hardware_concurrency());
  const ref::BlasInfo& blas = ref::blas_info();
  fmt::print("        CPU features: {}\n", ref::cpu_features().str());
  fmt::print("        BLAS: {}; kernels {}, chosen by {}\n", blas.library, blas.kernels, blas.chosen_by);
  fmt::print("  emu   our CUDA kernels on the CPU emulator, {} worker thread(s){}\n", emu::workers(),
             b.sanitize ? " (sanitizer build)" : "");
  if (!b.cuda) {
    fmt::print("  cuda  not built: {}\n", cuda_unavailable_reason());
  } else {
    fmt::print("  cuda  built for sm {}; CUDA runtime {}, driver {}\n", b.cuda_architectures, cuda_runtime_version(),
               cuda_driver_version());
    if (!cuda_available()) {
      fmt::print("        No GPU is available on this machine ({}), so kernels run on 'emu' and training on 'cpu'.\n",
                 cuda_unavailable_reason());
    }
    for (const GpuInfo& g : gpu_infos()) {
      fmt::print("        cuda:{}  {}  compute capability {}.{}, {} SMs, {:.1f} GiB, {} MHz, ~{:.0f} GB/s memory\n",
                 g.index, g.name, g.cc_major, g.cc_minor, g.sm_count, g.total_memory / double(1 << 30), g.clock_mhz,
                 g.memory_bandwidth_gbs);
    }
  }
  if (b.cudnn) {
    fmt::print("  cudnn built against cuDNN {}, runtime library {}\n", b.cudnn_version, cudnn::runtime_version());
    fmt::print("        module {}\n", module_status(Backend::cudnn));
  } else
    fmt::print("  cudnn {}\n", cudnn::runtime_version());
  // Backend onednn on device cpu: the default there when its module loads (--backend auto), else the reference.
  std::string why;
  default_backend(kCPU, &why);
  fmt::print("backends on cpu: reference, onednn; the default (--backend auto): {}\n", why);
#if FOVEA_HAVE_ONEDNN
  fmt::print("  onednn built against oneDNN {}, runtime {}\n", FOVEA_ONEDNN_VERSION_STRING, onednn::runtime_version());
  fmt::print("        module {}\n", module_status(Backend::onednn));
  fmt::print("        --precision bf16: {}; tf32, fp16: the reference (oneDNN 2.6 has none on CPUs)\n",
             ref::cpu_features().avx512_bf16 ? "oneDNN's BF16 kernels (AVX512_BF16)"
                                             : "oneDNN where it has a BF16 kernel for this CPU (no AVX512_BF16: "
                                               "emulated on AVX-512), else the reference");
#else
  fmt::print("  onednn {}\n", module_status(Backend::onednn));
#endif
  // Context::precision of conv2d and linear (cpu_reference/gemm.h's semantics).
  fmt::print(
      "precisions: fp32 (the default), tf32, bf16, fp16 (fovea op --precision; fovea train --precision, fp16 with "
      "dynamic loss scaling as torch.cuda.amp.GradScaler: --loss-scale dynamic|dynamic:INIT|VALUE)\n");
  return 0;
}

Command info_command("info", "Show the devices this build can use (CPU, emulator, GPUs) and library versions",
                     [](CLI::App&) -> Action { return run_info; });

}  // namespace
}  // namespace fovea::app
