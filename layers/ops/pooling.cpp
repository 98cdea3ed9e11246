#include "layers/ops/pooling.h"
#include "core/library_module.h"

#include <tuple>

#include "core/error.h"
#include "layers/ops/context.h"
#include "layers/ops/conv_shapes.h"
#include "layers/ops/registry.h"

namespace fovea {

void Pool2dParams::validate(const char* op) const {
  auto positive = [&](const char* arg, int64_t v) {
    FOVEA_CHECK(v > 0, op, ": argument '", arg, "' must be > 0, got ", v, " (", str(), ")");
  };
  positive("N", N), positive("C", C), positive("H", H), positive("W", W);
  positive("kernel_h", kernel_h), positive("kernel_w", kernel_w);
  positive("stride_h", stride_h), positive("stride_w", stride_w);
  FOVEA_CHECK(pad_h >= 0 && pad_w >= 0, op, ": argument 'pad' must be >= 0, got ", pad_h, ",", pad_w);
  // PyTorch: "pad should be at most half of effective kernel size".
  FOVEA_CHECK(2 * pad_h <= kernel_h && 2 * pad_w <= kernel_w, op, ": argument 'pad'=", pad_h, ",", pad_w,
              " must be at most half the kernel ", kernel_h, ",", kernel_w);
  FOVEA_CHECK(H + 2 * pad_h >= kernel_h && W + 2 * pad_w >= kernel_w, op, ": kernel ", kernel_h, "x", kernel_w,
              " is larger than the padded input ", H + 2 * pad_h, "x", W + 2 * pad_w);
}

void AdaptivePool2dParams::validate(const char* op) const {
  FOVEA_CHECK(N > 0 && C > 0 && H > 0 && W > 0, op, ": x must be [N, C, H, W] with every size > 0, got [", N, ", ", C,
              ", ", H, ", ", W, "]");
  FOVEA_CHECK(OH > 0 && OW > 0, op, ": argument 'output_size' must be > 0, got ", OH, ",", OW);
}

std::string Pool2dParams::str() const {
  return cat("x[", N, ",", C, ",", H, ",", W, "] kernel ", kernel_h, ",", kernel_w, " stride ", stride_h, ",", stride_w,
             " pad ", pad_h, ",", pad_w);
}

namespace ops {
namespace {

Shape y_shape(const Pool2dParams& p) {
  return {p.N, p.C, p.P(), p.Q()};
}
// cuDNN's max-pooling backward reads x and y; ours reads the argmax indices.
bool backward_by_values(const Context& ctx) {
  return ctx.exec().slot() == Slot::cudnn && load_module(Backend::cudnn) && maxpool2d_backward_stub.has(Slot::cudnn);
}

}  // namespace

Pool2dParams pool2d_params(const Shape& x, const Pool2dAttrs& a) {
  FOVEA_CHECK(x.ndim() == 4, "pool2d: argument 'x' must be [N, C, H, W], got ", x.str());
  Pool2dParams p;
  p.N = x[0], p.C = x[1], p.H = x[2], p.W = x[3];
  p.kernel_h = a.kernel_h, p.kernel_w = a.kernel_w, p.stride_h = a.stride_h, p.stride_w = a.stride_w;
  p.pad_h = a.pad_h, p.pad_w = a.pad_w, p.count_include_pad = a.count_include_pad;
  p.validate("pool2d");
  return p;
}

MaxPoolOut maxpool2d_forward(Context& ctx, const Tensor& x, const Pool2dAttrs& a) {
  check_tensor(ctx, "maxpool2d", "x", x);
  const Pool2dParams p = pool2d_params(x.shape(), a);
  MaxPoolOut out;
  out.y = empty_like(ctx, y_shape(p));
  if (backward_by_values(ctx))
    out.x = x;
  else
    out.indices = empty_like(ctx, y_shape(p), DType::int32);
  maxpool2d_forward_stub(ctx.exec(), p, x.data<float>(), out.y.data<float>(),
                         out.indices.defined() ? out.indices.data<int32_t>() : nullptr);
  return out;
}

Tensor maxpool2d_backward(Context& ctx, const Tensor& dy, const MaxPoolOut& fwd, const Shape& x_shape,
                          const Pool2dAttrs& a) {
  check_tensor(ctx, "maxpool2d_backward", "dy", dy);
  const Pool2dParams p = pool2d_params(x_shape, a);
  FOVEA_CHECK(dy.shape() == y_shape(p), "maxpool2d_backward: 'dy' ", dy.shape().str(), " must be ", y_shape(p).str());
  Tensor dx = empty_like(ctx, x_shape);
  if (backward_by_values(ctx)) {
    check_tensor(ctx, "maxpool2d_backward", "x", fwd.x);
    check_tensor(ctx, "maxpool2d_backward", "y", fwd.y);
    FOVEA_CHECK(fwd.x.shape() == x_shape && fwd.y.shape() == dy.shape(),
                "maxpool2d_backward: the forward's x and y do not match x ", x_shape.str(), " and dy ",
                dy.shape().str());
    maxpool2d_backward_stub(ctx.exec(), p, fwd.x.data<float>(), fwd.y.data<float>(), nullptr, dy.data<float>(),
                            dx.data<float>());
  } else {
    check_tensor(ctx, "maxpool2d_backward", "indices", fwd.indices, DType::int32);
    FOVEA_CHECK(fwd.indices.shape() == dy.shape(), "maxpool2d_backward: 'indices' ", fwd.indices.shape().str(),
                " must be ", y_shape(p).str());
    maxpool2d_backward_stub(ctx.exec(), p, nullptr, nullptr, fwd.indices.data<int32_t>(), dy.data<float>(),
                            dx.data<float>());
  }
  return dx;
}

Tensor avgpool2d_forward(Context& ctx, const Tensor& x, const Pool2dAttrs& a) {
  check_tensor(ctx, "avgpool2d", "x", x);
  const Pool2dParams p = pool2d_params(x.shape(), a);
  Tensor y = empty_like(ctx, y_shape(p));
  avgpool2d_forward_stub(ctx.exec(), p, x.data<float>(), y.data<float>());
  return y;
}

Tensor avgpool2d_backward(Context& ctx, const Tensor& dy, const Shape& x_shape, const Pool2dAttrs& a) {
  check_tensor(ctx, "avgpool2d_backward", "dy", dy);
  const Pool2dParams p = pool2d_params(x_shape, a);
  FOVEA_CHECK(dy.shape() == y_shape(p), "avgpool2d_backward: 'dy' ", dy.shape().str(), " must be ", y_shape(p).str());
  Tensor dx = empty_like(ctx, x_shape);
  avgpool2d_backward_stub(ctx.exec(), p, dy.data<float>(), dx.data<float>());
  return dx;
}

Tensor global_avgpool_forward(Context& ctx, const Tensor& x) {
  check_tensor(ctx, "global_avgpool", "x", x);
  FOVEA_CHECK(x.ndim() == 4, "global_avgpool: argument 'x' must be [N, C, H, W], got ", x.shape().str());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor y = empty_like(ctx, {N, C});
  global_avgpool_forward_stub(ctx.exec(), N, C, H, W, x.data<float>(), y.data<float>());
  return y;
}

namespace {
AdaptivePool2dParams adaptive_params(const char* op, const Shape& x, int64_t out_h, int64_t out_w) {
  FOVEA_CHECK(x.ndim() == 4, op, ": argument 'x' must be [N, C, H, W], got ", x.str());
  const AdaptivePool2dParams p{x[0], x[1], x[2], x[3], out_h, out_w};
  p.validate(op);
  return p;
}
}  // namespace

Tensor adaptive_avgpool2d_forward(Context& ctx, const Tensor& x, int64_t out_h, int64_t out_w) {
  check_tensor(ctx, "adaptive_avgpool2d", "x", x);
  const AdaptivePool2dParams p = adaptive_params("adaptive_avgpool2d", x.shape(), out_h, out_w);
  Tensor y = empty_like(ctx, {p.N, p.C, p.OH, p.OW});
  adaptive_avgpool2d_forward_stub(ctx.exec(), p, x.data<float>(), y.data<float>());
  return y;
}

Tensor adaptive_avgpool2d_backward(Context& ctx, const Tensor& dy, const Shape& x_shape) {
  check_tensor(ctx, "adaptive_avgpool2d_backward", "dy", dy);
  FOVEA_CHECK(dy.ndim() == 4 && x_shape.ndim() == 4 && dy.shape()[0] == x_shape[0] && dy.shape()[1] == x_shape[1],
              "adaptive_avgpool2d_backward: 'dy' ", dy.shape().str(), " does not fit x ", x_shape.str());
  const AdaptivePool2dParams p = adaptive_params("adaptive_avgpool2d_backward", x_shape, dy.shape()[2], dy.shape()[3]);
  Tensor dx = empty_like(ctx, x_shape);
  adaptive_avgpool2d_backward_stub(ctx.exec(), p, dy.data<float>(), dx.data<float>());
  return dx;
}

Tensor global_avgpool_backward(Context& ctx, const Tensor& dy, const Shape& x_shape) {
  check_tensor(ctx, "global_avgpool_backward", "dy", dy);
  FOVEA_CHECK(x_shape.ndim() == 4 && dy.shape() == Shape({x_shape[0], x_shape[1]}), "global_avgpool_backward: 'dy' ",
              dy.shape().str(), " does not match x ", x_shape.str());
  Tensor dx = empty_like(ctx, x_shape);
  global_avgpool_backward_stub(ctx.exec(), x_shape[0], x_shape[1], x_shape[2], x_shape[3], dy.data<float>(),
                               dx.data<float>());
  return dx;
}

}  // namespace ops
}  // namespace fovea

// ---------------------------------------------------------------- registry entries

namespace fovea::ops {
namespace {

// PyTorch's stride=None (the kernel size) is stride 0 here.
Pool2dAttrs pool_attrs(const OpArgs& a, bool avg) {
  Pool2dAttrs at;
  std::tie(at.kernel_h, at.kernel_w) = a.pair("kernel");
  std::tie(at.stride_h, at.stride_w) = a.pair("stride");
  if (at.stride_h == 0 && at.stride_w == 0) at.stride_h = at.kernel_h, at.stride_w = at.kernel_w;
  std::tie(at.pad_h, at.pad_w) = a.pair("pad");
  if (avg) at.count_include_pad = a.boolean("count_include_pad");
  return at;
}

std::string pair_text(int64_t h, int64_t w) {
  return h == w ? std::to_string(h) : cat(h, ",", w);
}

// The shared pooling shapes (layers/ops/conv_shapes.h); the CIFAR-sized one is a bench row.
std::vector<Sample> pool_samples(bool avg) {
  std::vector<Sample> out;
  for (const shapes::PoolShape& s : shapes::pool_shapes()) {
    const Pool2dParams& p = s.p;
    Sample smp{s.name, {{"x", {p.N, p.C, p.H, p.W}}}, {}, p.x_size() > (1 << 20)};
    smp.attrs = {{"kernel", pair_text(p.kernel_h, p.kernel_w)},
                 {"stride", pair_text(p.stride_h, p.stride_w)},
                 {"pad", pair_text(p.pad_h, p.pad_w)}};
    if (avg) smp.attrs["count_include_pad"] = std::to_string(int(p.count_include_pad));
    out.push_back(smp);
  }
  return out;
}

const std::vector<AttrInfo> kWindowAttrs = {
    {"kernel", AttrType::pair, "2", "window size"},
    {"stride", AttrType::pair, "0", "step between windows; 0: the kernel size (PyTorch's default)"},
    {"pad", AttrType::pair, "0", "implicit padding on each side (at most half the kernel)"}};

std::pair<double, double> pool_cost(const OpArgs& a, bool avg) {
  const Pool2dParams p = pool2d_params(a.tensor("x").shape(), pool_attrs(a, avg));
  return {double(p.y_size()) * double(p.kernel_h * p.kernel_w), 4.0 * double(p.x_size() + (avg ? 1 : 2) * p.y_size())};
}

const RegisterOp maxpool2d_op{{
    .name = "maxpool2d",
    .doc = "2-D max pooling, torch.nn.functional.max_pool2d (floor mode); padding never wins",
    .inputs = {{.name = "x", .fill = Fill::distinct, .doc = "[N, C, H, W]"}},
    .attrs = kWindowAttrs,
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"y", maxpool2d_forward(ctx, a.tensor("x"), pool_attrs(a, false)).y}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      // Backward needs what this backend's forward keeps (indices, or x and y): run it again.
      const Tensor& x = a.tensor("x");
      const MaxPoolOut fwd = maxpool2d_forward(ctx, x, pool_attrs(a, false));
      return {{"dx", maxpool2d_backward(ctx, a.tensor("dy"), fwd, x.shape(), pool_attrs(a, false))}};
    },
    .torch = "y = F.max_pool2d(x, kernel, stride=stride if stride != (0, 0) else kernel, padding=pad)",
    .samples = pool_samples(false),
    .stubs = {&maxpool2d_forward_stub, &maxpool2d_backward_stub},
    .cost = [](const OpArgs& a) { return pool_cost(a, false); },
}};

const RegisterOp avgpool2d_op{{
    .name = "avgpool2d",
    .doc = "2-D average pooling, torch.nn.functional.avg_pool2d (floor mode)",
    .inputs = {{.name = "x", .doc = "[N, C, H, W]"}},
    .attrs = {kWindowAttrs[0],
              kWindowAttrs[1],
              kWindowAttrs[2],
              {"count_include_pad", AttrType::boolean, "1", "divide by the whole window, padding included"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"y", avgpool2d_forward(ctx, a.tensor("x"), pool_attrs(a, true))}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      return {{"dx", avgpool2d_backward(ctx, a.tensor("dy"), a.tensor("x").shape(), pool_attrs(a, true))}};
    },
    .torch = "y = F.avg_pool2d(x, kernel, stride=stride if stride != (0, 0) else kernel, padding=pad, "
             "count_include_pad=count_include_pad)",
    .samples = pool_samples(true),
    .stubs = {&avgpool2d_forward_stub, &avgpool2d_backward_stub},
    .cost = [](const OpArgs& a) { return pool_cost(a, true); },
}};

const RegisterOp global_avgpool_op{{
    .name = "global_avgpool",
    .doc = "global average pooling [N, C, H, W] -> [N, C], torch.nn.functional.adaptive_avg_pool2d(x, 1) flattened",
    .inputs = {{.name = "x", .doc = "[N, C, H, W]"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"y", global_avgpool_forward(ctx, a.tensor("x"))}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      return {{"dx", global_avgpool_backward(ctx, a.tensor("dy"), a.tensor("x").shape())}};
    },
    .torch = "y = x.mean(dim=(2, 3))",
    .samples = {{"n1_c1_1x1", {{"x", {1, 1, 1, 1}}}},
                {"odd_3x5", {{"x", {2, 3, 3, 5}}}},
                {"resnet_8x8", {{"x", {3, 16, 8, 8}}}},
                {"resnet20_head_n128", {{"x", {128, 64, 8, 8}}}, {}, true}},
    .stubs = {&global_avgpool_forward_stub, &global_avgpool_backward_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("x").numel());
          return std::pair{n, 4.0 * n};
        },
}};

const RegisterOp adaptive_avgpool2d_op{{
    .name = "adaptive_avgpool2d",
    .doc = "adaptive average pooling to [OH, OW], torch.nn.functional.adaptive_avg_pool2d (VGG's 7x7)",
    .inputs = {{.name = "x", .doc = "[N, C, H, W]"}},
    .attrs = {{"output_size", AttrType::pair, "7", "output rows and columns (one number or h,w)"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      const auto [oh, ow] = a.pair("output_size");
      return {{"y", adaptive_avgpool2d_forward(ctx, a.tensor("x"), oh, ow)}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      return {{"dx", adaptive_avgpool2d_backward(ctx, a.tensor("dy"), a.tensor("x").shape())}};
    },
    .torch = "y = F.adaptive_avg_pool2d(x, output_size)",
    .samples = {{"n1_c1_1x1_to_1", {{"x", {1, 1, 1, 1}}}, {{"output_size", "1"}}},
                {"up_2x3_to_7", {{"x", {2, 3, 2, 3}}}, {{"output_size", "7"}}},
                {"uneven_10x9_to_4x3", {{"x", {2, 2, 10, 9}}}, {{"output_size", "4,3"}}},
                {"vgg_14x14_to_7", {{"x", {1, 4, 14, 14}}}, {{"output_size", "7"}}},
                {"vgg_n8", {{"x", {8, 512, 14, 14}}}, {{"output_size", "7"}}, true}},
    .stubs = {&adaptive_avgpool2d_forward_stub, &adaptive_avgpool2d_backward_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("x").numel());
          return std::pair{n, 8.0 * n};
        },
}};

}  // namespace
}  // namespace fovea::ops
