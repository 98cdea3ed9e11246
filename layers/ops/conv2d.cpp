#include "layers/ops/conv2d.h"

#include <tuple>

#include "core/error.h"
#include "layers/ops/context.h"
#include "layers/ops/conv_shapes.h"
#include "layers/ops/registry.h"

namespace fovea {

void Conv2dParams::validate(const char* op) const {
  auto positive = [&](const char* arg, int64_t v) {
    FOVEA_CHECK(v > 0, op, ": argument '", arg, "' must be > 0, got ", v, " (", str(), ")");
  };
  positive("N", N), positive("C", C), positive("H", H), positive("W", W);
  positive("K", K), positive("kernel_h", R), positive("kernel_w", S);
  positive("stride_h", stride_h), positive("stride_w", stride_w);
  positive("dilation_h", dil_h), positive("dilation_w", dil_w), positive("groups", groups);
  FOVEA_CHECK(pad_h >= 0 && pad_w >= 0, op, ": argument 'pad' must be >= 0, got ", pad_h, ",", pad_w);
  FOVEA_CHECK(C % groups == 0, op, ": argument 'groups'=", groups, " does not divide input channels C=", C);
  FOVEA_CHECK(K % groups == 0, op, ": argument 'groups'=", groups, " does not divide output channels K=", K);
  FOVEA_CHECK(H + 2 * pad_h >= dil_h * (R - 1) + 1, op, ": kernel height ", R, " (dilation ", dil_h,
              ") is larger than the padded input height ", H + 2 * pad_h);
  FOVEA_CHECK(W + 2 * pad_w >= dil_w * (S - 1) + 1, op, ": kernel width ", S, " (dilation ", dil_w,
              ") is larger than the padded input width ", W + 2 * pad_w);
}

std::string Conv2dParams::str() const {
  return cat("x[", N, ",", C, ",", H, ",", W, "] w[", K, ",", C / (groups ? groups : 1), ",", R, ",", S, "] stride ",
             stride_h, ",", stride_w, " pad ", pad_h, ",", pad_w, " dilation ", dil_h, ",", dil_w, " groups ", groups);
}

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::direct: return "direct";
    case ConvAlgo::implicit_gemm: return "implicit_gemm";
    case ConvAlgo::im2col_gemm: return "im2col_gemm";
  }
  return "?";
}

ConvAlgo parse_conv_algo(std::string_view s) {
  if (s == "direct") return ConvAlgo::direct;
  if (s == "implicit_gemm") return ConvAlgo::implicit_gemm;
  if (s == "im2col_gemm") return ConvAlgo::im2col_gemm;
  FOVEA_FAIL("conv2d: unknown algorithm '", s, "' (expected direct, implicit_gemm or im2col_gemm)");
}

const char* conv_op_name(ConvOp op) {
  switch (op) {
    case ConvOp::forward: return "conv2d_forward";
    case ConvOp::backward_data: return "conv2d_backward_data";
    case ConvOp::backward_filter: return "conv2d_backward_filter";
  }
  return "?";
}

namespace ops {
namespace {

Shape y_shape(const Conv2dParams& p) {
  return {p.N, p.K, p.P(), p.Q()};
}
ConvConfig config(const Context& ctx) {
  return ConvConfig{ctx.conv_algo, {}};
}

}  // namespace

Conv2dParams conv2d_params(const Shape& x, const Shape& w, const Conv2dAttrs& a) {
  FOVEA_CHECK(x.ndim() == 4, "conv2d: argument 'x' must be [N, C, H, W], got ", x.str());
  FOVEA_CHECK(w.ndim() == 4, "conv2d: argument 'w' must be [K, C/groups, R, S], got ", w.str());
  Conv2dParams p;
  p.N = x[0], p.C = x[1], p.H = x[2], p.W = x[3];
  p.K = w[0], p.R = w[2], p.S = w[3];
  p.stride_h = a.stride_h, p.stride_w = a.stride_w, p.pad_h = a.pad_h, p.pad_w = a.pad_w;
  p.dil_h = a.dil_h, p.dil_w = a.dil_w, p.groups = a.groups;
  p.validate("conv2d");
  FOVEA_CHECK(w[1] * a.groups == x[1], "conv2d: argument 'w' has ", w[1], " input channels per group but x has ", x[1],
              " channels and groups=", a.groups, " (w ", w.str(), ", x ", x.str(), ")");
  return p;
}

Tensor conv2d_forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dAttrs& a) {
  check_tensor(ctx, "conv2d", "x", x);
  check_tensor(ctx, "conv2d", "w", w);
  const Conv2dParams p = conv2d_params(x.shape(), w.shape(), a);
  if (b.defined()) {
    check_tensor(ctx, "conv2d", "b", b);
    FOVEA_CHECK(b.numel() == p.K, "conv2d: argument 'b' must have ", p.K, " elements, got ", b.shape().str());
  }
  Tensor y = empty_like(ctx, y_shape(p));
  if (ctx.precision != Precision::fp32)
    conv2d_forward_precision_stub(ctx.exec(), ctx.precision, p, x.data<float>(), w.data<float>(), data_or_null(b),
                                  y.data<float>());
  else
    conv2d_forward_stub(ctx.exec(), config(ctx), p, x.data<float>(), w.data<float>(), data_or_null(b), y.data<float>());
  return y;
}

Tensor conv2d_backward_data(Context& ctx, const Tensor& dy, const Tensor& w, const Shape& x_shape,
                            const Conv2dAttrs& a) {
  check_tensor(ctx, "conv2d_backward_data", "dy", dy);
  check_tensor(ctx, "conv2d_backward_data", "w", w);
  const Conv2dParams p = conv2d_params(x_shape, w.shape(), a);
  FOVEA_CHECK(dy.shape() == y_shape(p), "conv2d: argument 'dy' must have shape ", y_shape(p).str(), ", got ",
              dy.shape().str());
  Tensor dx = empty_like(ctx, x_shape);
  if (ctx.precision != Precision::fp32)
    conv2d_backward_data_precision_stub(ctx.exec(), ctx.precision, p, dy.data<float>(), w.data<float>(),
                                        dx.data<float>());
  else
    conv2d_backward_data_stub(ctx.exec(), config(ctx), p, dy.data<float>(), w.data<float>(), dx.data<float>());
  return dx;
}

Tensor conv2d_backward_filter(Context& ctx, const Tensor& x, const Tensor& dy, const Shape& w_shape,
                              const Conv2dAttrs& a) {
  check_tensor(ctx, "conv2d_backward_filter", "x", x);
  check_tensor(ctx, "conv2d_backward_filter", "dy", dy);
  const Conv2dParams p = conv2d_params(x.shape(), w_shape, a);
  FOVEA_CHECK(dy.shape() == y_shape(p), "conv2d: argument 'dy' must have shape ", y_shape(p).str(), ", got ",
              dy.shape().str());
  Tensor dw = empty_like(ctx, w_shape);
  if (ctx.precision != Precision::fp32)
    conv2d_backward_filter_precision_stub(ctx.exec(), ctx.precision, p, x.data<float>(), dy.data<float>(),
                                          dw.data<float>());
  else
    conv2d_backward_filter_stub(ctx.exec(), config(ctx), p, x.data<float>(), dy.data<float>(), dw.data<float>());
  return dw;
}

Tensor conv2d_backward_bias(Context& ctx, const Tensor& dy) {
  check_tensor(ctx, "conv2d_backward_bias", "dy", dy);
  FOVEA_CHECK(dy.ndim() == 4, "conv2d_backward_bias: argument 'dy' must be [N, K, P, Q], got ", dy.shape().str());
  Conv2dParams p;  // only N, K and the output size matter
  p.N = dy.size(0), p.K = p.C = dy.size(1), p.H = dy.size(2), p.W = dy.size(3);
  Tensor db = empty_like(ctx, {p.K});
  conv2d_backward_bias_stub(ctx.exec(), p, dy.data<float>(), db.data<float>());
  return db;
}

}  // namespace ops
}  // namespace fovea

// ---------------------------------------------------------------- registry entry

namespace fovea::ops {
namespace {

Conv2dAttrs conv_attrs(const OpArgs& a) {
  Conv2dAttrs at;
  std::tie(at.stride_h, at.stride_w) = a.pair("stride");
  std::tie(at.pad_h, at.pad_w) = a.pair("pad");
  std::tie(at.dil_h, at.dil_w) = a.pair("dilation");
  at.groups = a.integer("groups");
  return at;
}

std::string pair_text(int64_t h, int64_t w) {
  return h == w ? std::to_string(h) : cat(h, ",", w);
}

// Every shared conv shape (layers/ops/conv_shapes.h); every other one with a bias; the CIFAR shapes are bench rows.
std::vector<Sample> conv_samples() {
  std::vector<Sample> out;
  auto add = [&](const shapes::ConvShape& s, bool bench) {
    const Conv2dParams& p = s.p;
    Sample smp{s.name, {{"x", {p.N, p.C, p.H, p.W}}, {"w", {p.K, p.C_per_group(), p.R, p.S}}}, {}, bench};
    if (out.size() % 2 == 0 || bench) smp.shapes["b"] = {p.K};
    smp.attrs = {{"stride", pair_text(p.stride_h, p.stride_w)},
                 {"pad", pair_text(p.pad_h, p.pad_w)},
                 {"dilation", pair_text(p.dil_h, p.dil_w)},
                 {"groups", std::to_string(p.groups)}};
    out.push_back(smp);
  };
  for (const shapes::ConvShape& s : shapes::conv_edge_shapes()) add(s, false);
  for (const shapes::ConvShape& s : shapes::conv_cifar_shapes()) add(s, true);
  return out;
}

const RegisterOp conv2d_op{{
    .name = "conv2d",
    .doc = "2-D convolution (cross-correlation), torch.nn.functional.conv2d; NCHW input, KCRS weights",
    .inputs = {{.name = "x", .doc = "[N, C, H, W]"},
               {.name = "w", .doc = "[K, C/groups, R, S]"},
               {.name = "b", .optional = true, .doc = "[K]"}},
    .attrs = {{"stride", AttrType::pair, "1", "stride (one number or h,w)"},
              {"pad", AttrType::pair, "0", "zero padding on each side"},
              {"dilation", AttrType::pair, "1", "spacing of the kernel taps"},
              {"groups", AttrType::integer, "1", "C and K split into this many independent groups"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"y", conv2d_forward(ctx, a.tensor("x"), a.tensor("w"), a.optional("b"), conv_attrs(a))}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      const Tensor &x = a.tensor("x"), &w = a.tensor("w"), &dy = a.tensor("dy");
      const Conv2dAttrs at = conv_attrs(a);
      NamedTensors g{{"dx", conv2d_backward_data(ctx, dy, w, x.shape(), at)},
                     {"dw", conv2d_backward_filter(ctx, x, dy, w.shape(), at)}};
      if (a.has("b")) g.push_back({"db", conv2d_backward_bias(ctx, dy)});
      return g;
    },
    .torch = "y = F.conv2d(x, w, b, stride=stride, padding=pad, dilation=dilation, groups=groups)",
    .samples = conv_samples(),
    .stubs = {&conv2d_forward_stub, &conv2d_backward_data_stub, &conv2d_backward_filter_stub,
              &conv2d_backward_bias_stub},
    .precision_stubs = {&conv2d_forward_precision_stub, &conv2d_backward_data_precision_stub,
                        &conv2d_backward_filter_precision_stub},
    .cost =
        [](const OpArgs& a) {
          const Conv2dParams p = conv2d_params(a.tensor("x").shape(), a.tensor("w").shape(), conv_attrs(a));
          return std::pair{p.flops(), 4.0 * double(p.x_size() + p.w_size() + p.y_size())};
        },
}};

}  // namespace
}  // namespace fovea::ops
