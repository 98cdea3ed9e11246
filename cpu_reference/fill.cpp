// Fills from the Philox stream, element by element: the cpu slots of layers/ops/fill.h.
#include "layers/ops/fill.h"
#include "core/philox.h"

namespace fovea::ref {
namespace {

void fill_uniform(const Exec&, float* y, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) y[i] = lo + (hi - lo) * philox_uniform(seed, offset, uint64_t(i));
}
void fill_normal(const Exec&, float* y, int64_t n, float mean, float stddev, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) y[i] = mean + stddev * philox_normal(seed, offset, uint64_t(i));
}
void fill_value(const Exec&, float* y, int64_t n, float value) {
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

const bool registered = ops::fill_uniform_stub.define(Slot::cpu, fill_uniform) &&
                        ops::fill_normal_stub.define(Slot::cpu, fill_normal) &&
                        ops::fill_value_stub.define(Slot::cpu, fill_value);

}  // namespace
}  // namespace fovea::ref
