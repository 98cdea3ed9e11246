// Fused multi-tensor optimizer steps; the emu/cuda slots of layers/ops/optimizers.h (semantics there).
//
// Per element SGD reads w, grad (+ momentum buffer) and writes w (+ buffer): 12-20 bytes, <= 6 FLOPs;
// AdamW reads w, grad, m, v and writes w, m, v: 28 bytes, ~15 FLOPs with one sqrt and one divide. Both are
// HBM-bound on an H100: the target is >= 85% of 3.35 TB/s over the whole model (a ResNet-50 step moves
// ~700 MB: ~0.2 ms), reached with one launch for all tensors (no per-tensor launch latency), 16-byte
// accesses when a tensor's pointers are aligned (scalar fallback per tensor) and 4096-element chunks, i.e.
// thousands of blocks for a real model. Each element is updated by exactly one thread: deterministic.
//
// Loss scaling (OptimizerList::amp) costs the updates one 4-byte read per block: a skipped step returns at
// once, so the decision never goes through the host. amp_unscale is the same multi-tensor launch over the
// gradients (8 bytes per element); found_inf is one __syncthreads_or per block and an atomicExch of 1.0f by the
// blocks that saw a non-finite value (the same value from all: deterministic). amp_update is one thread.

#include <algorithm>
#include <cmath>

#include "kernels/common.cuh"
#include "kernels/reduce.cuh"
#include "layers/ops/optimizers.h"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

constexpr int kOptBlock = 256;

// The descriptor whose chunks include `chunk`: the last one with first_chunk <= chunk (empty tensors share
// first_chunk with their successor and are skipped).
__device__ inline int64_t find_tensor(const OptimizerTensor* t, int64_t count, int64_t chunk) {
  int64_t lo = 0, hi = count;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (t[mid].first_chunk <= chunk)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

struct SgdConsts {
  float wd, mom, damp, neg_lr;  // damp = 1 - dampening
  bool use_wd, use_mom, first, nesterov;
};

// The reference's expression order (cpu_reference/optimizers.cpp), scalars rounded to float once.
__device__ inline void sgd_update(float& w, float g, float& b, const SgdConsts& k) {
  float d = g;
  if (k.use_wd) d = d + k.wd * w;
  if (k.use_mom) {
    b = k.first ? d : b * k.mom + k.damp * d;
    d = k.nesterov ? d + k.mom * b : b;
  }
  w = w + k.neg_lr * d;
}

struct AdamWConsts {
  float decay, b1, b2, one_b1, one_b2, bc2_sqrt, eps, neg_step;
};

__device__ inline void adamw_update(float& w, float g, float& m, float& v, const AdamWConsts& k) {
  const float wi = w * k.decay;
  const float mi = m * k.b1 + k.one_b1 * g;
  const float vi = v * k.b2 + k.one_b2 * (g * g);
  m = mi, v = vi;
  const float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;
  w = wi + k.neg_step * (mi / denom);
}

// This block's chunk: elements [begin, end) of tensor d.
struct Chunk {
  OptimizerTensor d;
  int64_t begin, end;
};
__device__ inline Chunk block_chunk(const OptimizerTensor* tensors, int64_t count) {
  const int64_t chunk = blockIdx.x;
  const OptimizerTensor d = tensors[find_tensor(tensors, count, chunk)];
  const int64_t begin = (chunk - d.first_chunk) * kOptimizerChunk;
  return {d, begin, begin + kOptimizerChunk < d.n ? begin + kOptimizerChunk : d.n};
}

// A loss scaler's verdict (OptimizerList::amp): false to skip the update; else the step count it uses.
__device__ inline bool amp_step(const float* amp, int64_t& step) {
  if (!amp) return true;
  if (amp[kAmpFoundInf] != 0.0f) return false;
  step -= int64_t(amp[kAmpSkipped]);
  return true;
}

__global__ void sgd_multi_kernel(const OptimizerTensor* __restrict__ tensors, int64_t count, SgdConsts k,
                                 const float* amp, int64_t step) {
  if (!amp_step(amp, step)) return;
  k.first = step == 1;
  const Chunk ch = block_chunk(tensors, count);
  float *w = ch.d.w, *buf = ch.d.state0;
  const float* grad = ch.d.grad;
  const bool vec = aligned16(w) && aligned16(grad) && (!k.use_mom || aligned16(buf));
  int64_t scalar_begin = ch.begin;
  if (vec) {
    const int64_t end4 = ch.begin + (ch.end - ch.begin) / 4 * 4;
    for (int64_t i = ch.begin / 4 + threadIdx.x; i < end4 / 4; i += blockDim.x) {
      float4 wv = reinterpret_cast<float4*>(w)[i];
      const float4 gv = reinterpret_cast<const float4*>(grad)[i];
      float4 bv = k.use_mom ? reinterpret_cast<float4*>(buf)[i] : float4{0.0f, 0.0f, 0.0f, 0.0f};
      sgd_update(wv.x, gv.x, bv.x, k), sgd_update(wv.y, gv.y, bv.y, k);
      sgd_update(wv.z, gv.z, bv.z, k), sgd_update(wv.w, gv.w, bv.w, k);
      reinterpret_cast<float4*>(w)[i] = wv;
      if (k.use_mom) reinterpret_cast<float4*>(buf)[i] = bv;
    }
    scalar_begin = end4;
  }
  for (int64_t i = scalar_begin + threadIdx.x; i < ch.end; i += blockDim.x) {
    float b = k.use_mom ? buf[i] : 0.0f;
    sgd_update(w[i], grad[i], b, k);
    if (k.use_mom) buf[i] = b;
  }
}

// AdamW's hyperparameters for the bias corrections of a step count known only on the device.
struct AdamWStep {
  double lr, beta1, beta2;
  int64_t step;
};

__host__ __device__ inline void adamw_bias_corrections(const AdamWStep& s, AdamWConsts& k) {
  const double bc1 = 1.0 - pow(s.beta1, double(s.step)), bc2 = 1.0 - pow(s.beta2, double(s.step));
  k.bc2_sqrt = float(sqrt(bc2));
  k.neg_step = float(-(s.lr / bc1));
}

__global__ void adamw_multi_kernel(const OptimizerTensor* __restrict__ tensors, int64_t count, AdamWConsts k,
                                   const float* amp, AdamWStep s) {
  const int64_t host_step = s.step;
  if (!amp_step(amp, s.step)) return;
  if (s.step != host_step) adamw_bias_corrections(s, k);  // skipped updates before this one
  const Chunk ch = block_chunk(tensors, count);
  float *w = ch.d.w, *m = ch.d.state0, *v = ch.d.state1;
  const float* grad = ch.d.grad;
  int64_t scalar_begin = ch.begin;
  if (aligned16(w) && aligned16(grad) && aligned16(m) && aligned16(v)) {
    const int64_t end4 = ch.begin + (ch.end - ch.begin) / 4 * 4;
    for (int64_t i = ch.begin / 4 + threadIdx.x; i < end4 / 4; i += blockDim.x) {
      float4 wv = reinterpret_cast<float4*>(w)[i], mv = reinterpret_cast<float4*>(m)[i];
      float4 vv = reinterpret_cast<float4*>(v)[i];
      const float4 gv = reinterpret_cast<const float4*>(grad)[i];
      adamw_update(wv.x, gv.x, mv.x, vv.x, k), adamw_update(wv.y, gv.y, mv.y, vv.y, k);
      adamw_update(wv.z, gv.z, mv.z, vv.z, k), adamw_update(wv.w, gv.w, mv.w, vv.w, k);
      reinterpret_cast<float4*>(w)[i] = wv, reinterpret_cast<float4*>(m)[i] = mv;
      reinterpret_cast<float4*>(v)[i] = vv;
    }
    scalar_begin = end4;
  }
  for (int64_t i = scalar_begin + threadIdx.x; i < ch.end; i += blockDim.x) adamw_update(w[i], grad[i], m[i], v[i], k);
}

void check_launch(const char* op, const OptimizerTensor* tensors, int64_t count, int64_t chunks, int64_t step) {
  FOVEA_CHECK(step >= 1, op, ": argument 'step' must be >= 1, got ", step);
  FOVEA_CHECK(count >= 0 && chunks >= 0, op, ": arguments 'count'=", count, " and 'chunks'=", chunks, " must be >= 0");
  FOVEA_CHECK(chunks == 0 || count > 0, op, ": ", chunks, " chunks but 'count' is ", count, " tensors");
  if (chunks > 0) check_ptr(op, "tensors", tensors);
  FOVEA_CHECK(chunks <= int64_t(0x7fffffff), op, ": ", chunks, " chunks exceed one launch");
}

}  // namespace

void sgd_step(const Exec& ex, const SgdParams& p, const OptimizerList& list, int64_t step) {
  const char* op = "sgd_step";
  const auto [tensors, count, chunks, amp] = list;  // amp: read by the kernel
  p.validate(op);
  check_launch(op, tensors, count, chunks, step);
  if (chunks == 0) return;
  const SgdConsts k{float(p.weight_decay),
                    float(p.momentum),
                    float(1.0 - p.dampening),
                    float(-p.lr),
                    p.weight_decay != 0.0,
                    p.momentum != 0.0,
                    step == 1,
                    p.nesterov};
  launch<sgd_multi_kernel>(op, dim3(unsigned(chunks)), dim3(kOptBlock), 0, ex.stream, tensors, count, k, amp, step);
}

void adamw_step(const Exec& ex, const AdamWParams& p, const OptimizerList& list, int64_t step) {
  const char* op = "adamw_step";
  const auto [tensors, count, chunks, amp] = list;  // amp: read by the kernel
  p.validate(op);
  check_launch(op, tensors, count, chunks, step);
  if (chunks == 0) return;
  const AdamWStep s{p.lr, p.beta1, p.beta2, step};
  AdamWConsts k{float(1.0 - p.lr * p.weight_decay),
                float(p.beta1),
                float(p.beta2),
                float(1.0 - p.beta1),
                float(1.0 - p.beta2),
                0.0f,
                float(p.eps),
                0.0f};
  adamw_bias_corrections(s, k);
  launch<adamw_multi_kernel>(op, dim3(unsigned(chunks)), dim3(kOptBlock), 0, ex.stream, tensors, count, k, amp, s);
}

// ---- loss scaling

__global__ void amp_scale_kernel(int64_t n, float* x, const float* amp) {
  const float scale = amp[kAmpScale];
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = x[i] * scale;
}

// The reference's arithmetic (cpu_reference/optimizers.cpp unscale_grad): g * float(1 / double(scale)).
__global__ void amp_unscale_kernel(const OptimizerTensor* __restrict__ tensors, int64_t count, float* amp) {
  const Chunk ch = block_chunk(tensors, count);
  const float inv = float(1.0 / double(amp[kAmpScale]));
  float* g = ch.d.w;
  int bad = 0;
  for (int64_t i = ch.begin + threadIdx.x; i < ch.end; i += blockDim.x) {
    const float v = g[i];
    bad |= !isfinite(v);
    g[i] = v * inv;
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) atomicExch(amp + kAmpFoundInf, 1.0f);
}

struct AmpUpdate {
  double growth_factor, backoff_factor;
  float growth_interval;
  bool dynamic;
};

// One thread: GradScaler's rule (loss_scale_rule, layers/ops/optimizers.h), as the CPU reference runs it.
__global__ void amp_update_kernel(float* amp, AmpUpdate p) {
  loss_scale_rule(amp, p.growth_factor, p.backoff_factor, p.growth_interval, p.dynamic);
}

void amp_scale(const Exec& ex, int64_t n, float* x, const float* amp) {
  const char* op = "amp_scale";
  FOVEA_CHECK(n >= 0, op, ": argument 'n' must be >= 0, got ", n);
  if (n == 0) return;
  check_ptr(op, "x", x), check_ptr(op, "amp", amp);
  const int64_t blocks = std::min<int64_t>((n + kOptBlock - 1) / kOptBlock, 4096);
  launch<amp_scale_kernel>(op, dim3(unsigned(blocks)), dim3(kOptBlock), 0, ex.stream, n, x, amp);
}

void amp_unscale(const Exec& ex, const OptimizerList& grads, float* amp) {
  const char* op = "amp_unscale";
  const OptimizerTensor* tensors = grads.tensors;
  const int64_t count = grads.count, chunks = grads.chunks;
  check_launch(op, tensors, count, chunks, 1);
  if (chunks == 0) return;
  check_ptr(op, "amp", amp);
  launch<amp_unscale_kernel>(op, dim3(unsigned(chunks)), dim3(kOptBlock), 0, ex.stream, tensors, count, amp);
}

void amp_update(const Exec& ex, const LossScaleParams& p, float* amp) {
  const char* op = "amp_update";
  p.validate(op);
  check_ptr(op, "amp", amp);
  const AmpUpdate u{p.growth_factor, p.backoff_factor, float(p.growth_interval), p.dynamic};
  launch<amp_update_kernel>(op, dim3(1), dim3(1), 0, ex.stream, amp, u);
}

const bool registered =
    ops::sgd_step_stub.define(kThisSlot, sgd_step) && ops::adamw_step_stub.define(kThisSlot, adamw_step) &&
    ops::amp_scale_stub.define(kThisSlot, amp_scale) && ops::amp_unscale_stub.define(kThisSlot, amp_unscale) &&
    ops::amp_update_stub.define(kThisSlot, amp_update);

}  // namespace fovea::FOVEA_KERNEL_NS
