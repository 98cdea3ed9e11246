// Shared by the fuzz targets: run a parser on the input; fovea::Error is the expected outcome for
// bad input, anything else (a crash, a sanitizer report, another exception type) is a finding.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace fovea::fuzz {

template <typename F>
void expect_only_fovea_errors(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

// A parsed tensor must own exactly the bytes its shape says, and they must be readable.
inline void check_tensor(const Tensor& t) {
  uint64_t n = 1;
  for (int i = 0; i < t.ndim(); ++i) {
    if (t.shape()[i] < 0 || __builtin_mul_overflow(n, uint64_t(t.shape()[i]), &n)) {
      std::fprintf(stderr, "fuzz: tensor %s has an overflowing or negative shape\n", t.str().c_str());
      std::abort();
    }
  }
  if (n != uint64_t(t.numel())) {
    std::fprintf(stderr, "fuzz: tensor %s: numel %lld but the shape product is %llu\n", t.str().c_str(),
                 (long long)t.numel(), (unsigned long long)n);
    std::abort();
  }
  const unsigned char* p = static_cast<const unsigned char*>(t.raw_data());
  unsigned sum = 0;
  for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];  // AddressSanitizer checks every byte is owned
  volatile unsigned sink = sum;
  (void)sink;
}

}  // namespace fovea::fuzz
