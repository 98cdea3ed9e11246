#include "cpu_reference/blas.h"

#include <cblas.h>
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"

// OpenBLAS's DYNAMIC_ARCH entry points (exported by Debian's builds; absent from a single-target build, hence
// weak): gotoblas_dynamic_init() picks the kernel set, reading OPENBLAS_CORETYPE, unless one is set;
// gotoblas_dynamic_quit() unsets it.
extern "C" {
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
char* openblas_get_corename(void);
char* openblas_get_config(void);
}

namespace fovea::ref {

std::string CpuFeatures::str() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(sse3, "sse3"), add(avx, "avx"), add(avx2, "avx2"), add(fma, "fma"), add(avx512f, "avx512f");
  add(avx512bw, "avx512bw"), add(avx512dq, "avx512dq"), add(avx512vl, "avx512vl"), add(avx512_bf16, "avx512_bf16");
  add(avx512_fp16, "avx512_fp16");
  return s.empty() ? "none of sse3 avx avx2 fma avx512" : s;
}

CpuFeatures cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.sse3 = __builtin_cpu_supports("sse3");
  f.avx = __builtin_cpu_supports("avx");
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
  f.avx512_fp16 = __builtin_cpu_supports("avx512fp16");
#endif
  return f;
}

namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return r;
}

bool one_of(const std::string& name, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
}

// OpenBLAS exports each kernel set of a DYNAMIC_ARCH build as gotoblas_<NAME>: a name it would not find
// makes gotoblas_dynamic_init() end the process, so only names with their table are passed.
bool openblas_has_kernels(const std::string& name) {
  std::string symbol = "gotoblas_" + name;
  std::transform(symbol.begin() + 9, symbol.end(), symbol.begin() + 9,
                 [](unsigned char c) { return char(std::toupper(c)); });
  return ::dlsym(RTLD_DEFAULT, symbol.c_str()) != nullptr;
}

// OpenBLAS's own selection run again with the name set; before any BLAS call and any other thread.
void select_kernels(const std::string& name) {
  ::setenv("OPENBLAS_CORETYPE", name.c_str(), 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
}

// Odd-sized SGEMMs in the four transpositions against a double-precision loop: a kernel set that is
// wrong on this CPU is not kept.
bool sgemm_self_check() {
  const int M = 37, N = 29, K = 71;
  std::vector<float> a(size_t(M) * K), bm(size_t(K) * N), c(size_t(M) * N);
  uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return float(state >> 8) / float(1u << 24) - 0.5f;
  };
  for (float& v : a) v = next();
  for (float& v : bm) v = next();
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      // a holds op(A) = A [M,K] read as stored [K,M] when transposed (any data does for a check).
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
                  a.data(), ta ? M : K, bm.data(), tb ? K : N, 0.0f, c.data(), N);
      double err = 0, norm = 0;
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double want = 0;
          for (int k = 0; k < K; ++k)
            want += double(ta ? a[size_t(k) * M + i] : a[size_t(i) * K + k]) *
                    double(tb ? bm[size_t(j) * K + k] : bm[size_t(k) * N + j]);
          err += (c[size_t(i) * N + j] - want) * (c[size_t(i) * N + j] - want);
          norm += want * want;
        }
      if (!(err <= 1e-10 * norm)) return false;  // relative L2 1e-5; NaN fails
    }
  return true;
}

}  // namespace

std::string better_openblas_kernels(const CpuFeatures& f, std::string_view current) {
  const std::string c = lower(current);
  // OpenBLAS's x86-64 sets that use AVX-512 for SGEMM, and those that use AVX2 + FMA (or better).
  const bool has_avx512_set = one_of(c, {"skylakex", "cooperlake", "sapphirerapids"});
  const bool has_avx2_set = has_avx512_set || one_of(c, {"haswell", "zen", "skylake"});
  if (f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl) return has_avx512_set ? "" : "SkylakeX";
  if (f.avx2 && f.fma) return has_avx2_set ? "" : "Haswell";
  return "";
}

const BlasInfo& blas_info() {
  static const BlasInfo info = [] {
    BlasInfo b;
    const std::string picked = openblas_get_corename();
    const char* user = std::getenv("OPENBLAS_CORETYPE");
    const char* ours = std::getenv("FOVEA_BLAS_KERNELS");
    std::string want;
    const bool named = ours && *ours && lower(ours) != "openblas";  // FOVEA_BLAS_KERNELS names a set
    if (ours && lower(ours) == "openblas") {
      b.chosen_by = "OpenBLAS (FOVEA_BLAS_KERNELS=openblas)";
    } else if (named) {
      want = ours;
      b.chosen_by = "FOVEA_BLAS_KERNELS";
    } else if (user && *user) {
      b.chosen_by = "OPENBLAS_CORETYPE";
    } else {
      want = better_openblas_kernels(cpu_features(), picked);
      b.chosen_by = want.empty() ? "OpenBLAS (it knows this CPU)"
                                 : "fovea: OpenBLAS picked " + picked + " on a CPU with " + cpu_features().str();
    }
    if (!want.empty()) {
      const bool dynamic = gotoblas_dynamic_init && gotoblas_dynamic_quit;
      if (dynamic && !openblas_has_kernels(want) && named) {
        b.error = cat("FOVEA_BLAS_KERNELS=", want, ": this OpenBLAS (", openblas_get_config(),
                      ") has no kernel set of that name (e.g. Haswell, SkylakeX, Zen; or openblas for its own choice)");
        b.chosen_by = "OpenBLAS (FOVEA_BLAS_KERNELS not usable)";
      } else if (dynamic && !openblas_has_kernels(want)) {
        b.chosen_by = "OpenBLAS (it has no " + want + " kernels)";
      } else if (dynamic) {
        // Before any BLAS call and any other thread: OpenBLAS's own selection, run again with the name set.
        const std::string restore = user ? user : "";
        select_kernels(want);
        if (!named && !sgemm_self_check()) {
          // Some OpenBLAS releases compute wrong results with some kernel sets on CPUs newer than themselves.
          b.chosen_by = "OpenBLAS (" + want + " kernels failed fovea's SGEMM self-check on this CPU)";
          select_kernels(picked);
        }
        if (restore.empty())
          ::unsetenv("OPENBLAS_CORETYPE");
        else
          ::setenv("OPENBLAS_CORETYPE", restore.c_str(), 1);
      } else {
        b.chosen_by = "OpenBLAS (a single-target build: fovea cannot select " + want + ")";
      }
    }
    openblas_set_num_threads(1);
    b.library = openblas_get_config();
    b.kernels = openblas_get_corename();
    return b;
  }();
  return info;
}

}  // namespace fovea::ref
