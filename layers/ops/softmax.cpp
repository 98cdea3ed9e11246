#include "layers/ops/softmax.h"

#include "core/error.h"
#include "layers/ops/context.h"
#include "layers/ops/registry.h"

namespace fovea {

void CrossEntropyParams::validate(const char* op) const {
  FOVEA_CHECK(N > 0, op, ": argument 'N' must be > 0, got ", N);
  FOVEA_CHECK(C > 0, op, ": argument 'C' must be > 0, got ", C);
  FOVEA_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op,
              ": argument 'label_smoothing' must be in [0, 1], got ", label_smoothing);
}

namespace ops {
namespace {

void check_rows(const char* op, const Tensor& x) {
  FOVEA_CHECK(x.ndim() == 2, op, ": argument must be [N, C], got ", x.shape().str());
}

Tensor rows(Context& ctx, const DispatchStub<RowFn>& stub, const char* op, const Tensor& x) {
  check_tensor(ctx, op, "x", x);
  check_rows(op, x);
  Tensor y = empty_like(ctx, x.shape());
  stub(ctx.exec(), RowAlgo::automatic, x.size(0), x.size(1), x.data<float>(), y.data<float>());
  return y;
}

Tensor rows_backward(Context& ctx, const DispatchStub<RowBackwardFn>& stub, const char* op, const Tensor& dy,
                     const Tensor& y) {
  check_tensor(ctx, op, "dy", dy);
  check_tensor(ctx, op, "y", y);
  check_rows(op, y);
  check_same_shape(op, "dy", dy, "y", y);
  Tensor dx = empty_like(ctx, y.shape());
  stub(ctx.exec(), RowAlgo::automatic, y.size(0), y.size(1), y.data<float>(), dy.data<float>(), dx.data<float>());
  return dx;
}

}  // namespace

Tensor softmax_forward(Context& ctx, const Tensor& x) {
  return rows(ctx, softmax_forward_stub, "softmax", x);
}
Tensor softmax_backward(Context& ctx, const Tensor& dy, const Tensor& y) {
  return rows_backward(ctx, softmax_backward_stub, "softmax_backward", dy, y);
}
Tensor log_softmax_forward(Context& ctx, const Tensor& x) {
  return rows(ctx, log_softmax_forward_stub, "log_softmax", x);
}
Tensor log_softmax_backward(Context& ctx, const Tensor& dy, const Tensor& y) {
  return rows_backward(ctx, log_softmax_backward_stub, "log_softmax_backward", dy, y);
}

CrossEntropyOut cross_entropy(Context& ctx, const Tensor& logits, const Tensor& labels, float label_smoothing) {
  check_tensor(ctx, "cross_entropy", "logits", logits);
  check_tensor(ctx, "cross_entropy", "labels", labels, DType::int64);
  check_rows("cross_entropy", logits);
  FOVEA_CHECK(labels.ndim() == 1 && labels.size(0) == logits.size(0), "cross_entropy: 'labels' ", labels.shape().str(),
              " must be [N] for logits ", logits.shape().str());
  CrossEntropyParams p;
  p.N = logits.size(0), p.C = logits.size(1), p.label_smoothing = label_smoothing;
  p.validate("cross_entropy");
  CrossEntropyOut out{empty_like(ctx, {1}), empty_like(ctx, logits.shape())};
  Tensor row_loss = empty_like(ctx, {p.N});
  const Exec ex = ctx.exec();
  cross_entropy_forward_stub(ex, RowAlgo::automatic, p, logits.data<float>(), labels.data<int64_t>(),
                             row_loss.data<float>(), out.loss.data<float>());
  cross_entropy_backward_stub(ex, RowAlgo::automatic, p, logits.data<float>(), labels.data<int64_t>(), 1.0f,
                              out.dlogits.data<float>());
  return out;
}

}  // namespace ops
}  // namespace fovea

// ---------------------------------------------------------------- registry entries

namespace fovea::ops {
namespace {

const std::vector<Sample> kRowSamples = {
    {"one_row_one_class", {{"x", {1, 1}}}},
    {"odd", {{"x", {3, 7}}}},
    {"warp_edge", {{"x", {5, 1024}}}},
    {"block_per_row", {{"x", {2, 1500}}}},
    {"classifier_n256", {{"x", {256, 1000}}}, {}, true},
};

std::pair<double, double> row_cost(const OpArgs& a) {
  const double n = double(a.tensor("x").numel());
  return {5.0 * n, 8.0 * n};
}

OpInfo row_op(std::string name, std::string doc, Tensor (*fwd)(Context&, const Tensor&),
              Tensor (*bwd)(Context&, const Tensor&, const Tensor&), std::string torch,
              std::vector<const StubInfo*> stubs) {
  OpInfo op;
  op.name = std::move(name);
  op.doc = std::move(doc);
  op.inputs = {{.name = "x", .doc = "[N, C]"}};
  op.outputs = {"y"};
  op.forward = [fwd](Context& ctx, const OpArgs& a) -> NamedTensors { return {{"y", fwd(ctx, a.tensor("x"))}}; };
  op.backward = [bwd](Context& ctx, const OpArgs& a, const NamedTensors& out) -> NamedTensors {
    return {{"dx", bwd(ctx, a.tensor("dy"), out.at(0).second)}};
  };
  op.torch = std::move(torch);
  op.samples = kRowSamples;
  op.stubs = std::move(stubs);
  op.cost = row_cost;
  return op;
}

const RegisterOp softmax_op{row_op("softmax", "softmax over dim 1 of [N, C]", softmax_forward, softmax_backward,
                                   "y = F.softmax(x, dim=1)", {&softmax_forward_stub, &softmax_backward_stub})};
const RegisterOp log_softmax_op{row_op("log_softmax", "log-softmax over dim 1 of [N, C]", log_softmax_forward,
                                       log_softmax_backward, "y = F.log_softmax(x, dim=1)",
                                       {&log_softmax_forward_stub, &log_softmax_backward_stub})};

// The loss is a scalar; its gradient dloss scales the fused gradient (softmax - target) / N.
float scalar_value(const Tensor& t, const char* op, const char* what) {
  FOVEA_CHECK(t.numel() == 1, op, ": '", what, "' must hold one value, got shape ", t.shape().str());
  return t.to(kCPU).data<float>()[0];  // one number back to the host (this op's backward only)
}

const RegisterOp cross_entropy_op{{
    .name = "cross_entropy",
    .doc = "torch.nn.functional.cross_entropy(logits, labels, label_smoothing), mean over the batch",
    .inputs = {{.name = "logits", .doc = "[N, C]"},
               {.name = "labels", .dtype = DType::int64, .fill = Fill::labels, .doc = "[N] class indices in [0, C)"}},
    .attrs = {{"label_smoothing", AttrType::number, "0", "in [0, 1]"}},
    .outputs = {"loss"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      const CrossEntropyOut r =
          cross_entropy(ctx, a.tensor("logits"), a.tensor("labels"), float(a.number("label_smoothing")));
      return {{"loss", r.loss.reshape(Shape())}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      const Tensor &logits = a.tensor("logits"), &labels = a.tensor("labels");
      const float dloss = scalar_value(a.tensor("dloss"), "cross_entropy", "dloss");
      check_tensor(ctx, "cross_entropy", "logits", logits);
      check_tensor(ctx, "cross_entropy", "labels", labels, DType::int64);
      FOVEA_CHECK(logits.ndim() == 2 && labels.ndim() == 1 && labels.size(0) == logits.size(0),
                  "cross_entropy: logits ", logits.shape().str(), " and labels ", labels.shape().str(),
                  " must be [N, C] and [N]");
      CrossEntropyParams p;
      p.N = logits.size(0), p.C = logits.size(1), p.label_smoothing = a.number("label_smoothing");
      p.validate("cross_entropy");
      Tensor dlogits = empty_like(ctx, logits.shape());
      cross_entropy_backward_stub(ctx.exec(), RowAlgo::automatic, p, logits.data<float>(), labels.data<int64_t>(),
                                  dloss, dlogits.data<float>());
      return {{"dlogits", dlogits}};
    },
    .torch = "loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)",
    .samples = {{"one", {{"logits", {1, 1}}, {"labels", {1}}}},
                {"odd", {{"logits", {3, 7}}, {"labels", {3}}}},
                {"smoothing", {{"logits", {5, 10}}, {"labels", {5}}}, {{"label_smoothing", "0.1"}}},
                {"block_per_row", {{"logits", {2, 1500}}, {"labels", {2}}}},
                {"cifar_n128", {{"logits", {128, 10}}, {"labels", {128}}}, {}, true},
                {"imagenet_n256", {{"logits", {256, 1000}}, {"labels", {256}}}, {}, true}},
    .stubs = {&cross_entropy_forward_stub, &cross_entropy_backward_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("logits").numel());
          return std::pair{5.0 * n, 8.0 * n};
        },
}};

}  // namespace
}  // namespace fovea::ops
