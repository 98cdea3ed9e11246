// Fused optimizer updates over ALL parameter tensors of a model in one launch (kernels/optimizer.cu), with the
// exact update rules of cpu_reference/optimizers.h (torch.optim.SGD, torch.optim.AdamW). Multi-tensor apply:
// the caller keeps a device array of OptimizerTensor descriptors; every block updates one chunk of
// kOptimizerChunk elements of one tensor, finding its tensor by binary search over first_chunk.
//
//   std::vector<OptimizerTensor> list = {{w0, g0, m0, v0, n0}, {w1, g1, m1, v1, n1}, ...};
//   const int64_t chunks = plan_optimizer_chunks(list.data(), int64_t(list.size()), "adamw", true, true);
//   copy_bytes(d_list, dev, list.data(), kCPU, list.size() * sizeof(OptimizerTensor));  // explicit upload, once
//   adamw_step_multi(params, d_list, int64_t(list.size()), chunks, step, stream);      // every step
#pragma once
#include <cstdint>

#include "core/error.h"
#include "kernels/api.h"

namespace fovea {

// One parameter tensor: device pointers and its element count. state0 is SGD's momentum buffer (nullptr when
// momentum == 0) or AdamW's m; state1 is AdamW's v (unused by SGD). first_chunk is set by plan_optimizer_chunks.
struct OptimizerTensor {
  float* w = nullptr;
  const float* grad = nullptr;
  float* state0 = nullptr;
  float* state1 = nullptr;
  int64_t n = 0;
  int64_t first_chunk = 0;
};

inline constexpr int64_t kOptimizerChunk = 4096;  // elements per block: a multiple of 4 (float4 alignment)

// Host side, on the host copy of the list: checks every descriptor (pointers the update needs are non-null,
// n >= 0), sets first_chunk, returns the total number of chunks (the grid of the launch).
inline int64_t plan_optimizer_chunks(OptimizerTensor* tensors, int64_t count, const char* op, bool needs_state0,
                                     bool needs_state1) {
  FOVEA_CHECK(count >= 0 && (count == 0 || tensors), op, ": bad tensor list (", count, " tensors at ",
              static_cast<const void*>(tensors), ")");
  int64_t chunks = 0;
  for (int64_t t = 0; t < count; ++t) {
    OptimizerTensor& d = tensors[t];
    FOVEA_CHECK(d.n >= 0, op, ": tensor ", t, " has n=", d.n);
    FOVEA_CHECK(d.n == 0 || (d.w && d.grad), op, ": tensor ", t, " has a null 'w' or 'grad'");
    FOVEA_CHECK(d.n == 0 || !needs_state0 || d.state0, op, ": tensor ", t, " has a null first state buffer");
    FOVEA_CHECK(d.n == 0 || !needs_state1 || d.state1, op, ": tensor ", t, " has a null second state buffer");
    d.first_chunk = chunks;
    chunks += (d.n + kOptimizerChunk - 1) / kOptimizerChunk;
  }
  return chunks;
}

}  // namespace fovea

#define FOVEA_OPTIMIZER_KERNELS                                                                                        \
  /* torch.optim.SGD step `step` (1-based; step 1 initialises the momentum buffer) on every tensor of the device       \
     list `tensors` [count] whose chunks were planned (plan_optimizer_chunks with needs_state0 = momentum != 0). */    \
  void sgd_step_multi(const SgdParams& p, const OptimizerTensor* tensors, int64_t count, int64_t chunks, int64_t step, \
                      StreamHandle stream);                                                                            \
  /* torch.optim.AdamW step (amsgrad=False); state0 = m, state1 = v (zero before step 1). */                           \
  void adamw_step_multi(const AdamWParams& p, const OptimizerTensor* tensors, int64_t count, int64_t chunks,           \
                        int64_t step, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_OPTIMIZER_KERNELS)
