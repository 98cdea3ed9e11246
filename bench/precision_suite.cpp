#include "bench/precision_suite.h"

#include <fmt/core.h>

#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <type_traits>

#include "core/build_info.h"
#include "core/error.h"
#include "core/memory.h"
#include "cpu_reference/gemm.h"
#include "kernels/conv2d_tc.h"
#include "kernels/nhwc16.h"
#include "kernels/tc_gemm.h"
#include "layers/cudnn/cudnn_backend.h"
#include "layers/ops/conv2d.h"
#include "layers/ops/conv_shapes.h"
#include "layers/ops/gemm.h"

namespace fovea::bench {

// ---------------------------------------------------------------- the tensor-core peak

namespace {

// Dense tensor-core FLOP per clock per SM (an FMA counts 2), from NVIDIA's whitepapers:
//   sm_80 A100: 156 TFLOP/s TF32, 312 TFLOP/s FP16/BF16 (FP32 accumulation) at 108 SMs x 1410 MHz
//               ("NVIDIA A100 Tensor Core GPU Architecture", table 1) -> 1024 and 2048 per SM per clock.
//   sm_90 H100 SXM5: 494.7 TFLOP/s TF32, 989.4 TFLOP/s FP16/BF16 at 132 SMs x 1830 MHz ("NVIDIA H100 Tensor
//               Core GPU Architecture", table 3) -> 2048 and 4096 per SM per clock (H100 PCIe and H200 are the same
//               SM at other counts and clocks).
// Other compute capabilities (8.6, 8.9: consumer and workstation parts, some with half-rate FP32 accumulation)
// are not in the table: their peak is reported unknown rather than guessed.
struct PeakEntry {
  int cc_major, cc_minor;
  double tf32_per_clock, f16_per_clock;
  const char* source;
};
constexpr PeakEntry kPeaks[] = {
    {8, 0, 1024, 2048, "A100 whitepaper: 156/312 TFLOP/s TF32/16-bit dense at 108 SMs x 1410 MHz"},
    {9, 0, 2048, 4096, "H100 whitepaper: 494.7/989.4 TFLOP/s TF32/16-bit dense (SXM5) at 132 SMs x 1830 MHz"},
};

}  // namespace

TensorCorePeak tensor_core_peak(Device d, Precision p) {
  TensorCorePeak out;
  if (d.type != DeviceType::cuda) {
    out.how = "peak unknown (device " + d.str() + " has no tensor cores)";
    return out;
  }
  const std::vector<GpuInfo> gpus = gpu_infos();
  if (size_t(d.index) >= gpus.size() || gpus[size_t(d.index)].name.empty()) {
    out.how = "peak unknown (no device properties)";
    return out;
  }
  const GpuInfo& g = gpus[size_t(d.index)];
  for (const PeakEntry& e : kPeaks) {
    if (e.cc_major != g.cc_major || e.cc_minor != g.cc_minor) continue;
    if (p != Precision::tf32 && p != Precision::bf16 && p != Precision::fp16) break;
    const double per_clock = p == Precision::tf32 ? e.tf32_per_clock : e.f16_per_clock;
    out.tflops = per_clock * g.sm_count * g.clock_mhz * 1e6 * 1e-12;
    out.how = fmt::format("{} {} FLOP/clock/SM x {} SMs x {} MHz (max SM clock reported by the runtime; {})",
                          precision_name(p), per_clock, g.sm_count, g.clock_mhz, e.source);
    return out;
  }
  out.how = fmt::format("peak unknown for {} (sm_{}{}: not in the table of bench/precision_suite.cpp)", g.name,
                        g.cc_major, g.cc_minor);
  return out;
}

namespace {

// Our implicit-GEMM tensor-core convolutions (kernels/conv2d_tc.h) on the anchor's 16-bit NHWC buffers. TF32 is left
// out: its raw kernels take FP32 NHWC, cuDNN's TF32 rows here run on FP32 NCHW.
template <class T>
void tc_igemm_raw_as(const Exec& ex, ConvOp op, const Conv2dParams& p, const void* in0, const void* in1, void* out) {
  const T* a = static_cast<const T*>(in0);
  const T* b = static_cast<const T*>(in1);
  T* o = static_cast<T*>(out);
  if constexpr (std::is_same_v<T, BFloat16>) {
    if (op == ConvOp::forward)
      ops::conv2d_tc_fprop_nhwc_bf16_stub(ex, p, a, b, nullptr, o);
    else if (op == ConvOp::backward_data)
      ops::conv2d_tc_dgrad_nhwc_bf16_stub(ex, p, a, b, o);
    else
      ops::conv2d_tc_wgrad_nhwc_bf16_stub(ex, p, a, b, o);
  } else {
    if (op == ConvOp::forward)
      ops::conv2d_tc_fprop_nhwc_fp16_stub(ex, p, a, b, nullptr, o);
    else if (op == ConvOp::backward_data)
      ops::conv2d_tc_dgrad_nhwc_fp16_stub(ex, p, a, b, o);
    else
      ops::conv2d_tc_wgrad_nhwc_fp16_stub(ex, p, a, b, o);
  }
}

void tc_igemm_raw(const Exec& ex, Precision prec, ConvOp op, const Conv2dParams& p, const void* in0, const void* in1,
                  void* out) {
  if (prec == Precision::bf16)
    tc_igemm_raw_as<BFloat16>(ex, op, p, in0, in1, out);
  else
    tc_igemm_raw_as<Half>(ex, op, p, in0, in1, out);
}

bool tc_igemm_supports(Precision prec, ConvOp, const Conv2dParams&) {
  return prec == Precision::bf16 || prec == Precision::fp16;
}

}  // namespace

std::vector<RawConvContender> raw_conv_contenders() {
  // More raw-buffer contenders go here (a name, a function taking the device buffers, what it supports).
  return {{"ours:conv2d_tc_igemm (raw NHWC)", &tc_igemm_raw, &tc_igemm_supports}};
}

namespace {

// ---------------------------------------------------------------- cases and rows

constexpr double kSanityTol = 2e-2;  // rel L2 between two implementations of the same precision: a sanity check

struct Entry {
  Row row;
  bool anchor = false;
  double target = 0;  // the design target's minimum ratio anchor time / this time (0: none)
};

struct Case {
  std::string op, shape;
  Precision prec = Precision::bf16;
  double flops = 0;
  std::vector<Entry> entries;
};

std::string op_label(const std::string& op, Precision p) {
  return op + " " + std::string(precision_name(p));
}

size_t elem_bytes(Precision p) {
  return p == Precision::tf32 ? 4 : 2;
}

// Device buffers of one case, filled from host random numbers in [-1, 1) (never zeros).
Buffer device_random(const BenchConfig& c, int64_t n, uint64_t seed, const Stream& stream) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> h(static_cast<size_t>(n));
  for (float& v : h) {
    v = dist(rng);
    if (v == 0.0f) v = 0.5f;
  }
  Buffer b(size_t(n) * sizeof(float), c.device);
  copy_bytes(b.data(), c.device, h.data(), kCPU, h.size() * sizeof(float), stream.handle());
  return b;
}

// An FP32 copy on the host of a raw output (16-bit bits in NHWC order for bf16/fp16, widened to NCHW; FP32 as is).
std::vector<float> host_float(const Exec& ex, Precision p, const void* raw, int64_t n, int64_t c, int64_t hw,
                              const Stream& stream) {
  const int64_t total = n * c * hw;
  std::vector<float> h(static_cast<size_t>(total));
  if (p == Precision::tf32 || ex.device.type == DeviceType::cpu) {
    copy_bytes(h.data(), kCPU, raw, ex.device, h.size() * sizeof(float), stream.handle());
  } else {
    Buffer wide(size_t(total) * sizeof(float), ex.device);
    ops::nhwc16_to_nchw_stub(ex, p, n, c, hw, static_cast<const uint16_t*>(raw), wide.as<float>());
    copy_bytes(h.data(), kCPU, wide.data(), ex.device, h.size() * sizeof(float), stream.handle());
  }
  stream.synchronize();
  return h;
}

// ||got - want|| / ||want||; NaN when an element of got is not finite.
double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return NAN;
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

std::string sanity(const std::vector<float>& got, const std::vector<float>& want, const std::string& against) {
  if (want.empty()) return "unchecked (no anchor)";
  const double e = rel_l2(got, want);
  if (!(e <= kSanityTol)) return fmt::format("FAILED {:.1e} vs {}", e, against);
  return fmt::format("ok {:.1e} vs {}", e, against);
}

struct Ctx {
  const BenchConfig& c;
  const Stream& stream;
  Workspace ws;
  Exec ours, vendor;
  bool cuda, vendor_on;
  Ctx(const BenchConfig& cfg, const Stream& s)
      : c(cfg),
        stream(s),
        ws(cfg.device),
        ours{cfg.device, Backend::custom, s.handle(), &ws, true},
        vendor{cfg.device, Backend::cudnn, s.handle(), &ws, true},
        cuda(cfg.device.type == DeviceType::cuda),
        vendor_on(cuda && cfg.cudnn) {}
};

std::vector<float> host_copy(const Buffer& b, int64_t n, const Ctx& x) {
  std::vector<float> h(static_cast<size_t>(n));
  copy_bytes(h.data(), kCPU, b.data(), b.device(), h.size() * sizeof(float), x.stream.handle());
  x.stream.synchronize();
  return h;
}

Row base_row(const Case& k, const std::string& impl) {
  Row r;
  r.suite = "precision";
  r.op = op_label(k.op, k.prec);
  r.shape = k.shape;
  r.impl = impl;
  r.flops = k.flops;
  return r;
}

// Times fn into e (the row is marked failed instead when the check failed).
void time_into(Ctx& x, Entry& e, const std::function<void()>& fn) {
  if (e.row.verify.rfind("FAILED", 0) == 0) {
    e.row.note = "outputs disagree beyond the sanity tolerance; not timed";
    return;
  }
  e.row.stats = time_runs(x.stream, x.c.timing, [&](int) { fn(); });
  e.row.timed = true;
}

// ---------------------------------------------------------------- GEMM

Case gemm_case(Ctx& x, Precision prec, const GemmShape& s) {
  Case k;
  k.op = "gemm";
  k.prec = prec;
  k.shape = fmt::format("M{} N{} K{}", s.M, s.N, s.K);
  k.flops = 2.0 * double(s.M) * double(s.N) * double(s.K);
  const Buffer A32 = device_random(x.c, s.M * s.K, 11, x.stream), B32 = device_random(x.c, s.N * s.K, 12, x.stream);
  const bool is16 = prec != Precision::tf32;
  if (x.c.device.type == DeviceType::cpu) {
    // The reference of the precision (OpenBLAS on rounded operands).
    Buffer C(size_t(s.M * s.N) * sizeof(float), kCPU);
    Entry e{base_row(k, "reference"), false, 0};
    e.row.verify = "oracle";
    time_into(x, e, [&] {
      ref::gemm(prec, false, true, s.M, s.N, s.K, 1.0f, A32.as<float>(), s.K, B32.as<float>(), s.K, 0.0f, C.as<float>(),
                s.N);
    });
    k.entries.push_back(e);
    return k;
  }
  // Raw operands: the FP32 buffers for tf32, 16-bit copies (rounded to nearest even) for bf16/fp16.
  Buffer A16, B16;
  if (is16) {
    A16 = Buffer(size_t(s.M * s.K) * 2, x.c.device), B16 = Buffer(size_t(s.N * s.K) * 2, x.c.device);
    ops::nchw_to_nhwc16_stub(x.ours, prec, s.M * s.K, 1, 1, A32.as<float>(), static_cast<uint16_t*>(A16.data()));
    ops::nchw_to_nhwc16_stub(x.ours, prec, s.N * s.K, 1, 1, B32.as<float>(), static_cast<uint16_t*>(B16.data()));
  }
  const void* A = is16 ? A16.data() : A32.data();
  const void* B = is16 ? B16.data() : B32.data();
  const size_t c_bytes = size_t(s.M * s.N) * elem_bytes(prec);
  std::vector<float> anchor_out;
  if (x.vendor_on) {
    Entry e{base_row(k, "cublaslt"), true, 0};
    try {
      Buffer C(c_bytes, x.c.device);
      // The fastest of the heuristic's first kLtRanks algorithms, as cuDNN's fastest for the convolutions.
      constexpr int kLtRanks = 8;
      std::optional<std::pair<int, Stats>> best;
      int ranks = 0;
      for (int r = 0; r < kLtRanks; ++r, ++ranks) {
        if (!cudnn::lt_gemm_raw(x.vendor, prec, s.M, s.N, s.K, A, B, C.data(), r)) break;
        const Stats st = time_runs(x.stream, x.c.timing,
                                   [&](int) { cudnn::lt_gemm_raw(x.vendor, prec, s.M, s.N, s.K, A, B, C.data(), r); });
        if (!best || st.median_ms < best->second.median_ms) best = {{r, st}};
      }
      cudnn::lt_gemm_raw(x.vendor, prec, s.M, s.N, s.K, A, B, C.data(), best->first);
      anchor_out = host_float(x.ours, prec, C.data(), s.M * s.N, 1, 1, x.stream);
      e.row.verify = "anchor";
      e.row.stats = best->second;
      e.row.timed = true;
      e.row.note = fmt::format("fastest of cuBLASLt's first {} heuristic algorithms (rank {}), FP32 compute{}", ranks,
                               best->first, x.vendor.deterministic ? ", no split-K reductions (deterministic)" : "");
    } catch (const Error& err) {
      e.row.verify = "skipped";
      e.row.note = err.what();
    }
    k.entries.push_back(e);
  }
  Entry e{base_row(k, fmt::format("ours:tc_gemm_multistage (raw {})", is16 ? "16-bit" : "fp32")), false,
          prec == Precision::bf16 && s.M == 4096 && s.N == 4096 && s.K == 4096 ? 0.9 : 0.0};
  try {
    Buffer C(c_bytes, x.c.device);
    const SgemmParams g = sgemm_params(Trans::N, Trans::T, s.M, s.N, s.K);
    auto run = [&] {
      if (prec == Precision::tf32)
        ops::tc_gemm_multistage_tf32_stub(x.ours, g, static_cast<const float*>(A), static_cast<const float*>(B),
                                          C.as<float>());
      else if (prec == Precision::bf16)
        ops::tc_gemm_multistage_bf16_stub(x.ours, g, static_cast<const BFloat16*>(A), static_cast<const BFloat16*>(B),
                                          static_cast<BFloat16*>(C.data()));
      else
        ops::tc_gemm_multistage_fp16_stub(x.ours, g, static_cast<const Half*>(A), static_cast<const Half*>(B),
                                          static_cast<Half*>(C.data()));
    };
    run();
    const bool vs_ref = anchor_out.empty();
    if (vs_ref) {  // no vendor row (emu, or --no-cudnn): the CPU reference of the precision instead
      const std::vector<float> a = host_copy(A32, s.M * s.K, x), b = host_copy(B32, s.N * s.K, x);
      anchor_out.assign(size_t(s.M * s.N), 0.0f);
      ref::gemm(prec, false, true, s.M, s.N, s.K, 1.0f, a.data(), s.K, b.data(), s.K, 0.0f, anchor_out.data(), s.N);
    }
    e.row.verify = sanity(host_float(x.ours, prec, C.data(), s.M * s.N, 1, 1, x.stream), anchor_out,
                          vs_ref ? "reference" : "cublaslt");
    time_into(x, e, run);
  } catch (const Error& err) {
    e.row.verify = "skipped";
    e.row.note = err.what();
  }
  k.entries.push_back(e);
  return k;
}

// ---------------------------------------------------------------- convolution

const char* short_op(ConvOp op) {
  return op == ConvOp::forward ? "conv fprop" : op == ConvOp::backward_data ? "conv dgrad" : "conv wgrad";
}

// The op-level precision stub (FP32 NCHW in and out; on cpu the reference, else ours with its conversions).
void conv_stub(const Exec& ex, Precision prec, ConvOp op, const Conv2dParams& p, const float* in0, const float* in1,
               float* out) {
  if (op == ConvOp::forward)
    ops::conv2d_forward_precision_stub(ex, prec, p, in0, in1, nullptr, out);
  else if (op == ConvOp::backward_data)
    ops::conv2d_backward_data_precision_stub(ex, prec, p, in0, in1, out);
  else
    ops::conv2d_backward_filter_precision_stub(ex, prec, p, in0, in1, out);
}

Case conv_case(Ctx& x, Precision prec, ConvOp op, const Conv2dParams& p) {
  Case k;
  k.op = short_op(op);
  k.prec = prec;
  k.shape = conv_shape_name(p);
  k.flops = p.flops();
  const std::array<cudnn::ConvBufferDims, 3> d = cudnn::conv_buffer_dims(op, p);
  const Buffer in0 = device_random(x.c, d[0].size(), 21, x.stream), in1 = device_random(x.c, d[1].size(), 22, x.stream);
  Buffer out32(size_t(d[2].size()) * sizeof(float), x.c.device);
  const bool is16 = prec != Precision::tf32;
  const bool bf16_target = prec == Precision::bf16;

  if (x.c.device.type == DeviceType::cpu) {
    Entry e{base_row(k, "reference"), false, 0};
    e.row.verify = "oracle";
    time_into(x, e, [&] { conv_stub(x.ours, prec, op, p, in0.as<float>(), in1.as<float>(), out32.as<float>()); });
    k.entries.push_back(e);
    return k;
  }

  // Raw buffers in the precision's layout.
  Buffer r0, r1;
  if (is16) {
    r0 = Buffer(size_t(d[0].size()) * 2, x.c.device), r1 = Buffer(size_t(d[1].size()) * 2, x.c.device);
    ops::nchw_to_nhwc16_stub(x.ours, prec, d[0].n, d[0].c, d[0].hw, in0.as<float>(), static_cast<uint16_t*>(r0.data()));
    ops::nchw_to_nhwc16_stub(x.ours, prec, d[1].n, d[1].c, d[1].hw, in1.as<float>(), static_cast<uint16_t*>(r1.data()));
  }
  const void* raw0 = is16 ? r0.data() : in0.data();
  const void* raw1 = is16 ? r1.data() : in1.data();
  const size_t out_bytes = size_t(d[2].size()) * elem_bytes(prec);
  auto out_float = [&](const void* raw) { return host_float(x.ours, prec, raw, d[2].n, d[2].c, d[2].hw, x.stream); };

  std::vector<float> anchor_out;
  std::string anchor_name = "cudnn";  // what anchor_out holds: cuDNN's output, else the CPU reference
  if (x.vendor_on) {
    Entry e{base_row(k, "cudnn"), true, 0};
    try {
      Buffer out(out_bytes, x.c.device);
      const std::vector<cudnn::ConvAlgoInfo> algos = cudnn::conv_precision_algorithms(x.vendor, prec, op, p);
      FOVEA_CHECK(!algos.empty(), "cuDNN lists no supported ", precision_name(prec), " algorithm");
      std::optional<std::pair<cudnn::ConvAlgoInfo, Stats>> best, best_det;
      for (const cudnn::ConvAlgoInfo& a : algos) {
        auto run = [&] { cudnn::conv_precision_raw(x.vendor, prec, op, p, a.algo, raw0, raw1, out.data()); };
        run();
        const Stats st = time_runs(x.stream, x.c.timing, [&](int) { run(); });
        if (!best || st.median_ms < best->second.median_ms) best = {{a, st}};
        if (a.deterministic && (!best_det || st.median_ms < best_det->second.median_ms)) best_det = {{a, st}};
      }
      cudnn::conv_precision_raw(x.vendor, prec, op, p, best->first.algo, raw0, raw1, out.data());
      anchor_out = out_float(out.data());
      e.row.impl = "cudnn:" + best->first.name;
      e.row.stats = best->second;
      e.row.timed = true;
      e.row.verify = "anchor";
      e.row.note = fmt::format("fastest of {} algorithms; {}", algos.size(),
                               best->first.deterministic ? std::string("deterministic")
                               : best_det ? fmt::format("NON-deterministic (fastest deterministic: {} {:.4f} ms)",
                                                        best_det->first.name, best_det->second.median_ms)
                                          : std::string("NON-deterministic (no deterministic algorithm listed)"));
    } catch (const Error& err) {
      e.row.verify = "skipped";
      e.row.note = err.what();
    }
    k.entries.push_back(e);
  }

  {
    Entry e{base_row(k, "ours:op-level (FP32 NCHW in/out, conversions included)"), false, bf16_target ? 0.8 : 0.0};
    try {
      auto run = [&] { conv_stub(x.ours, prec, op, p, in0.as<float>(), in1.as<float>(), out32.as<float>()); };
      run();
      const bool vs_ref = anchor_out.empty();
      if (vs_ref) {  // no vendor row (emu, or --no-cudnn): the CPU reference of the precision instead
        const std::vector<float> a = host_copy(in0, d[0].size(), x), b = host_copy(in1, d[1].size(), x);
        anchor_out.assign(size_t(d[2].size()), 0.0f);
        Workspace host_ws(kCPU);
        conv_stub(Exec{kCPU, Backend::custom, nullptr, &host_ws, true}, prec, op, p, a.data(), b.data(),
                  anchor_out.data());
      }
      if (vs_ref) anchor_name = "reference";
      e.row.verify = sanity(host_copy(out32, d[2].size(), x), anchor_out, anchor_name);
      time_into(x, e, run);
    } catch (const Error& err) {
      e.row.verify = "skipped";
      e.row.note = err.what();
    }
    k.entries.push_back(e);
  }

  for (const RawConvContender& rc : raw_conv_contenders()) {
    if (rc.supports && !rc.supports(prec, op, p)) continue;
    Entry e{base_row(k, rc.impl), false, bf16_target ? 0.8 : 0.0};
    try {
      Buffer out(out_bytes, x.c.device);
      auto run = [&] { rc.run(x.ours, prec, op, p, raw0, raw1, out.data()); };
      run();
      e.row.verify = sanity(out_float(out.data()), anchor_out, anchor_name);
      time_into(x, e, run);
    } catch (const Error& err) {
      e.row.verify = "skipped";
      e.row.note = err.what();
    }
    k.entries.push_back(e);
  }
  return k;
}

// ---------------------------------------------------------------- shapes

struct Shapes {
  std::vector<GemmShape> gemms;
  std::vector<Conv2dParams> convs;
  std::string notes;
};

Shapes make_shapes(const std::string& name, int64_t batch) {
  Shapes s;
  if (name == "tiny") {
    s.gemms = {{64, 48, 40}};
    s.convs = {shapes::conv_params(2, 8, 8, 8, 8, 3, 3, 1, 1), shapes::conv_params(2, 8, 9, 9, 16, 1, 1, 2, 0)};
    s.notes = "tiny: one small GEMM and two small convolutions";
    return s;
  }
  FOVEA_CHECK(name == "design", "fovea bench: unknown precision shape set '", name, "' (expected design or tiny)");
  s.gemms = {{4096, 4096, 4096}};
  ShapeSet set;
  for (const char* m : {"resnet20", "resnet9"}) add_model_shapes(m, batch, set);
  std::set<std::string> seen;
  for (const Conv2dParams& p : set.convs)
    if (seen.insert(conv_shape_name(p)).second) s.convs.push_back(p);
  for (const GemmShape& g : set.gemms)
    if (seen.insert(fmt::format("{} {} {}", g.M, g.N, g.K)).second) s.gemms.push_back(g);
  s.notes = fmt::format("design: GEMM 4096^3 and the conv/linear layers of resnet20 and resnet9 at batch {}", batch);
  return s;
}

bool wanted(const BenchConfig& c, const std::string& family) {
  if (c.ops.empty()) return true;
  for (const std::string& o : c.ops)
    if (o == family) return true;
  return false;
}

// ---------------------------------------------------------------- the table

std::string fmt_or(double v, const char* fmt_str, const char* none = "-") {
  return v > 0 ? fmt::format(fmt::runtime(fmt_str), v) : std::string(none);
}

std::string format_table(const std::vector<Case>& cases, const Device& d, const std::string& notes) {
  std::string out = fmt::format("precision suite on {}: {}\n", d.str(), notes);
  std::map<Precision, TensorCorePeak> peaks;
  for (Precision p : {Precision::tf32, Precision::bf16, Precision::fp16}) {
    peaks[p] = tensor_core_peak(d, p);
    if (peaks[p].tflops > 0)
      out +=
          fmt::format("  tensor-core peak {}: {:.1f} TFLOP/s [{}]\n", precision_name(p), peaks[p].tflops, peaks[p].how);
    else
      out += fmt::format("  tensor-core peak {}: {}\n", precision_name(p), peaks[p].how);
  }
  out +=
      "  x anchor = anchor time / row time (cuBLASLt for GEMM, cuDNN's fastest algorithm for conv); target: issue 16's "
      "design targets (BF16 conv >= 0.80x cuDNN, BF16 GEMM 4096^3 >= 0.90x cuBLAS), printed, not asserted\n";
  out += fmt::format("{:<16} {:<26} {:<64} {:>10} {:>9} {:>8} {:>7} {:<14} {}\n", "op", "shape", "impl", "ms",
                     "TFLOP/s", "x anchor", "% peak", "target", "verify / note");
  for (const Case& k : cases) {
    double anchor_ms = 0;
    for (const Entry& e : k.entries)
      if (e.anchor && e.row.timed) anchor_ms = e.row.stats.median_ms;
    for (const Entry& e : k.entries) {
      const Row& r = e.row;
      const double ms = r.timed ? r.stats.median_ms : 0;
      const double tflops = ms > 0 ? k.flops / (ms * 1e-3) * 1e-12 : 0;
      const double ratio = ms > 0 && anchor_ms > 0 ? anchor_ms / ms : 0;
      const double peak = peaks[k.prec].tflops;
      std::string target;
      if (e.target > 0)
        target = ratio > 0 ? fmt::format("{} >= {:.2f}x", ratio >= e.target ? "PASS" : "FAIL", e.target)
                           : fmt::format("n/a >= {:.2f}x", e.target);
      std::string vn = r.verify;
      if (!r.note.empty()) vn += "; " + r.note;
      out += fmt::format("{:<16} {:<26} {:<64} {:>10} {:>9} {:>8} {:>7} {:<14} {}\n", r.op, r.shape, r.impl,
                         fmt_or(ms, "{:.4f}"), fmt_or(tflops, "{:.3g}"), fmt_or(ratio, "{:.2f}"),
                         peak > 0 && tflops > 0 ? fmt::format("{:.1f}", 100 * tflops / peak) : std::string("-"), target,
                         vn);
    }
  }
  return out;
}

}  // namespace

void set_tensor_core_roofline(std::vector<Row>& rows, Device d) {
  std::map<std::string, double> peak;  // by precision name
  for (Precision p : {Precision::tf32, Precision::bf16, Precision::fp16})
    peak[std::string(precision_name(p))] = tensor_core_peak(d, p).tflops;
  for (Row& r : rows) {
    if (r.suite != "precision") continue;
    const size_t space = r.op.rfind(' ');
    const auto it = space == std::string::npos ? peak.end() : peak.find(r.op.substr(space + 1));
    r.roofline = it != peak.end() && it->second > 0 ? r.tflops / it->second : 0;
  }
}

std::vector<Row> run_precision_suite(const BenchConfig& c, const PrecisionSuiteOptions& o, const Stream& stream,
                                     std::string* table) {
  const std::string shape_set = !o.shapes.empty() ? o.shapes : c.device.type == DeviceType::cuda ? "design" : "tiny";
  const Shapes s = make_shapes(shape_set, o.batch);
  Ctx x(c, stream);
  std::vector<Case> cases;
  for (Precision prec : o.precisions) {
    FOVEA_CHECK(prec == Precision::tf32 || prec == Precision::bf16 || prec == Precision::fp16,
                "fovea bench: precision ", precision_name(prec), " is not a tensor-core precision");
    if (wanted(c, "gemm"))
      for (const GemmShape& g : s.gemms) cases.push_back(gemm_case(x, prec, g));
    if (wanted(c, "conv2d"))
      for (const Conv2dParams& p : s.convs)
        for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter})
          cases.push_back(conv_case(x, prec, op, p));
  }
  if (table) *table = format_table(cases, c.device, s.notes);
  std::vector<Row> rows;
  for (const Case& k : cases)
    for (const Entry& e : k.entries) rows.push_back(e.row);
  return rows;
}

}  // namespace fovea::bench
