// layers/train/session: a training step waits for nothing (host synchronisations counted in core/stream), the
// metric sums on the device give the numbers the host loop gave, divergence is reported at the next read point
// naming the step where it happened, a stop request ends the epoch as a partial one with its checkpoint, and
// the device-side metrics op refuses bad arguments by name.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/io.h"
#include "core/launch_check.h"
#include "core/philox.h"
#include "core/stream.h"
#include "layers/nn/checkpoint.h"
#include "layers/ops/metrics.h"
#include "layers/train/session.h"
#include "tests/pth_builder.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace fovea::nn {
namespace {

namespace fs = std::filesystem;

// Names a folder that the command under test creates itself (fovea train --out).
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("fovea_session_test", /*create=*/false) {}
};

// BatchNorm (running statistics), a residual block, dropout (masks of the step), global average pooling.
const char* const kModel = "conv:8:3:pad=1,bn,relu,res(conv:8:3:pad=1,bn,relu),maxpool:2,dropout:0.2,gap,linear";

// The rings dataset (2-D points) and an MLP: for tests of the session's bookkeeping, a tenth of the setup time.
TrainConfig rings_config(const std::string& out, const std::string& model = "linear:16,relu,linear") {
  TrainConfig c;
  c.dataset = "rings";
  c.subset = 96;
  c.batch = 16;
  c.epochs = 2;
  c.model = model;
  c.device = kCPU;
  c.seed = 3;
  c.progress = false;
  c.out = out;
  return c;
}

TrainConfig small_config(Device device, const std::string& out) {
  TrainConfig c;
  c.dataset = "synthetic";
  c.subset = 96;
  c.batch = 16;
  c.epochs = 2;
  c.model = kModel;
  c.device = device;
  c.augment = data::parse_augment("standard");
  c.seed = 3;
  c.progress = false;
  c.out = out;
  return c;
}

struct Counts {
  int64_t syncs = 0, launches = 0;
};
template <class F>
Counts count(F&& f) {
  const int64_t s0 = host_sync_count(), l0 = kernel_launch_count();
  f();
  return {host_sync_count() - s0, kernel_launch_count() - l0};
}

// The test issue 12 asks for: a training step on emu - the batch's upload, device augmentation, forward, loss,
// backward, optimizer step and metric accumulation - enqueues work and waits for none of it, from the first step
// on. Reading the sums at a read point is the one wait, and it is counted.
class TrainStepSyncs : public ::testing::TestWithParam<OptimizerKind> {};

TEST_P(TrainStepSyncs, StepOnEmuPerformsNoHostSynchronisation) {
  TempDir d;
  TrainConfig c = small_config(kEmu, d.str());
  c.optimizer = GetParam();
  c.max_norm = 3;  // the max-norm constraint and the L1/L2 penalties run in the step too
  c.l1 = 1e-5;
  c.l2 = 1e-4;
  if (GetParam() == OptimizerKind::adamw) {  // transfer learning: a frozen conv + batch norm, two learning rates
    c.freeze = "0-1";
    c.lr_backbone = 1e-4;
  }
  TrainSession s(c);
  data::BatchLoader& loader = s.loader();
  loader.start_epoch(0);
  s.begin_epoch_metrics();
  data::Batch batch;
  int64_t launches = -1;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(loader.next(batch));
    DeviceBatch on_device;
    const Counts up = count([&] { on_device = s.upload(batch); });
    EXPECT_EQ(up.syncs, 0) << "the upload of batch " << i << " waited for the device";
    EXPECT_EQ(up.launches, 0);
    EXPECT_TRUE(on_device.warps.defined()) << "--augment standard: the device warps the images";
    const Counts st = count([&] { s.step(on_device); });
    EXPECT_EQ(st.syncs, 0) << "step " << s.step_count() << " waited for the device";
    EXPECT_GT(st.launches, 20);
    if (launches >= 0) {
      EXPECT_EQ(st.launches, launches) << "every step launches the same kernels";
    }
    launches = st.launches;
  }
  ::testing::Test::RecordProperty("launches_per_step", std::to_string(launches));
  ops::MetricSums sums;
  const Counts rd = count([&] { sums = s.read_metrics(); });
  EXPECT_EQ(rd.syncs, 1);
  EXPECT_EQ(rd.launches, 0);
  EXPECT_GT(sums.loss_sum, 0);
  EXPECT_GE(sums.correct, 0);
  EXPECT_LE(sums.correct, 4 * 16);
  EXPECT_FALSE(sums.non_finite());
}

INSTANTIATE_TEST_SUITE_P(Optimizers, TrainStepSyncs, ::testing::Values(OptimizerKind::sgd, OptimizerKind::adamw),
                         [](const auto& info) { return std::string(optimizer_name(info.param)); });

// The same reading on the cpu reference: no device, so nothing to wait for, not even the uploads.
TEST(TrainStep, OnCpuNothingIsCounted) {
  TempDir d;
  TrainSession s(small_config(kCPU, d.str()));
  s.loader().start_epoch(0);
  s.begin_epoch_metrics();
  data::Batch batch;
  ASSERT_TRUE(s.loader().next(batch));
  const Counts c = count([&] {
    s.step(s.upload(batch));
    (void)s.read_metrics();
  });
  EXPECT_EQ(c.syncs, 0);
  EXPECT_EQ(c.launches, 0);
}

// An epoch waits for the device at its read points only: every log_every steps and at its end (then the
// evaluation and the checkpoint read their results), never inside a step.
TEST(TrainSession, AnEpochWaitsOnlyAtItsReadPoints) {
  TempDir d;
  TrainConfig c = small_config(kEmu, d.str());
  c.log_every = 2;
  TrainSession s(c);
  ASSERT_EQ(s.steps_per_epoch(), 6);
  std::vector<int64_t> syncs_at_step;
  s.after_step = [&](TrainSession&) { syncs_at_step.push_back(host_sync_count()); };
  const int64_t before = host_sync_count();
  (void)s.run_epoch();
  // The read after step k lands between hooks k and k+1; the last one (step 6) after the last hook.
  ASSERT_EQ(syncs_at_step.size(), 6u);
  const std::vector<int64_t> want{0, 0, 1, 1, 2, 2};
  for (size_t k = 0; k < 6; ++k) EXPECT_EQ(syncs_at_step[k] - before, want[k]) << "after step " << k + 1;
}

TEST(TrainSession, DivergenceIsReportedAtTheNextReadPointNamingTheStep) {
  TempDir d;
  TrainConfig c = small_config(kEmu, d.str());
  c.lr = 1e30;
  c.schedule = parse_schedule("constant");
  c.log_every = 4;
  TrainSession s(c);
  auto number_after = [](const std::string& m, const std::string& key) -> int64_t {
    const size_t at = m.find(key);
    return at == std::string::npos ? -1 : std::stoll(m.substr(at + key.size()));
  };
  try {
    s.run_epoch();
    FAIL() << "no divergence";
  } catch (const TrainingDiverged& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("training diverged: the loss is "), std::string::npos) << m;
    EXPECT_NE(m.find("read every 4 steps"), std::string::npos) << m;
    EXPECT_NE(m.find("no checkpoint was written yet"), std::string::npos) << m;
    // Where the loss first was not finite (step 1 starts from finite weights) and where that was noticed: a read
    // point (every 4 steps, and the end of the 6-step epoch) at or after it.
    const int64_t at = number_after(m, "at step "), noticed = number_after(m, "noticed at step ");
    EXPECT_GE(at, 2) << m;
    EXPECT_GE(noticed, at) << m;
    EXPECT_TRUE(noticed == 4 || noticed == 6) << m;
    EXPECT_EQ(noticed, s.step_count()) << m;
  }
  EXPECT_FALSE(fs::exists(d.str() + "/checkpoint.safetensors"));
}

TEST(TrainSession, StopRequestEndsThePartialEpochWithItsCheckpoint) {
  TempDir d;
  TrainSession s(small_config(kCPU, d.str()));
  s.after_step = [](TrainSession& session) {
    if (session.step_count() == 3) session.request_stop();
  };
  const TrainResult r = s.run();
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.steps, 3);
  ASSERT_EQ(r.history.size(), 1u);
  EXPECT_TRUE(r.history[0].partial);
  EXPECT_EQ(r.history[0].steps, 3);
  EXPECT_TRUE(fs::exists(r.checkpoint));
  EXPECT_TRUE(s.finished());
}

// --max-steps is the run's length: the epoch count, the progress and the learning-rate schedule are of the
// steps it will make (issue 13), not of --epochs.
TEST(TrainSession, MaxStepsShapesEpochsAndSchedule) {
  TempDir d;
  TrainConfig c = rings_config(d.str());
  c.epochs = 5;
  c.max_steps = 8;  // 6 steps an epoch: one epoch and two steps
  c.lr = 0.1;
  TrainSession s(c);
  EXPECT_EQ(s.total_steps(), 8);
  EXPECT_EQ(s.epochs(), 2);
  const TrainResult r = s.run();
  EXPECT_EQ(r.steps, 8);
  ASSERT_EQ(r.history.size(), 2u);
  EXPECT_TRUE(r.history[1].partial);
  // Cosine over 8 steps: the last update (step 7 of 0..7) is near the end of the decay, not at 4/5 of the peak
  // as over 5 epochs of 6 steps.
  EXPECT_LT(r.history[1].lr, 0.1 * 0.1) << r.history[1].lr;
}

// The test set scored each epoch: as many random examples as --subset by default, all with 0, N with N.
TEST(TrainSession, EvalSubsetFollowsSubsetUnlessGiven) {
  TempDir d;
  TrainConfig c = rings_config(d.str());
  c.epochs = 1;
  c.max_steps = 1;
  c.overwrite = true;  // each session below writes its config.json into the same folder
  EXPECT_EQ(TrainSession(c).test_set().size(), 96);
  c.eval_subset = 40;
  EXPECT_EQ(TrainSession(c).test_set().size(), 40);
  c.eval_subset = 100000000;
  try {
    TrainSession t(c);
    ADD_FAILURE() << "an --eval-subset larger than the test set was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--eval-subset: must be <="), std::string::npos) << e.what();
  }
}

// --init-from a checkpoint of which no tensor fits the model is an error, not a silent run from scratch.
TEST(TrainSession, InitFromThatLoadsNothingIsAnError) {
  TempDir a, b;
  TrainConfig src = rings_config(a.str(), "linear:5,relu,linear:7,relu,linear");  // no shape as the default
  src.max_steps = 1;
  const TrainResult r = TrainSession(src).run();
  TrainConfig c = rings_config(b.str());
  c.init_from = r.checkpoint;
  try {
    TrainSession t(c);
    ADD_FAILURE() << "--init-from that matches nothing was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--init-from: no tensor of"), std::string::npos) << e.what();
  }
}

// A state_dict as torch.save writes it (tests/pth_builder.h: a pickle of _rebuild_tensor_v2 calls and the
// storages in a zip archive), with batch norm's num_batches_tracked beside each running_mean as PyTorch saves it.
std::string pth_of(const std::map<std::string, Tensor>& tensors) {
  test::PickleWriter p;
  p.proto(2).global("collections", "OrderedDict").empty_tuple().reduce().mark();
  std::vector<test::ZipFileEntry> files{{"archive/data.pkl", ""}};
  auto add = [&](const std::string& name, const Tensor& t) {
    const std::string key = std::to_string(files.size() - 1);
    std::vector<int64_t> stride(size_t(t.ndim()), 1);
    for (int i = t.ndim() - 1; i > 0; --i) stride[size_t(i - 1)] = stride[size_t(i)] * t.size(i);
    p.str(name).tensor(t.dtype() == DType::int64 ? "LongStorage" : "FloatStorage", key, t.numel(), 0, t.shape().vec(),
                       stride);
    files.push_back({"archive/data/" + key, std::string(static_cast<const char*>(t.raw_data()), t.nbytes())});
  };
  for (const auto& [name, t] : tensors) {
    add(name, t);
    if (name.size() > 12 && name.substr(name.size() - 12) == "running_mean")
      add(name.substr(0, name.size() - 12) + "num_batches_tracked", Tensor::from_vector(std::vector<int64_t>{7}, {}));
  }
  files[0].data = p.setitems().stop().b;
  files.push_back({"archive/version", "3\n"});
  return test::make_zip(files);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Transfer learning from a PyTorch file: --init-from W.pth --replace-head --freeze layer1 --lr-backbone, on both
// of the classes (--classes, reordered). The frozen part (batch-norm statistics included) is bitwise what the file
// holds, the part after it trains, the head has the new classes; resume restores the settings.
TEST(TrainSession, TransferFromAPthFileWithANewHeadAndAFrozenBackbone) {
  // The rings (2-D points) and an MLP with torchvision-style names: a tenth of the setup time of images.
  const std::string spec =
      "stem=seq(linear:16:bias=0,bn,relu),layer1=seq(linear:16:bias=0,bn,relu),layer2=seq(linear:16:bias=0,bn,relu),"
      "fc=linear";
  ops::Context ctx(kCPU);
  std::unique_ptr<Model> src = build_model(spec, {2}, 4);  // "pretrained" on 4 classes
  src->initialize(ctx, 9);
  uint64_t stream = 0;
  for (StateRef& s : src->states()) {  // non-trivial statistics: a mix-up of names would show
    std::vector<float> v(size_t(s.state->value.numel()));
    const bool var = s.path.find("running_var") != std::string::npos;  // means near 0: relu keeps half
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = var ? 0.5f + philox_uniform(9, stream, i) : 0.2f * (philox_uniform(9, stream, i) - 0.5f);
    ++stream;
    s.state->value = Tensor::from_vector(v, s.state->value.shape());
  }
  const std::map<std::string, Tensor> weights = src->state_dict();
  TempDir files, run, run2;
  fs::create_directories(files.str());
  const std::string pth = files.str() + "/pretrained.pth";
  write_file_atomic(pth, pth_of(weights));

  TrainConfig c = rings_config(run.str(), spec);
  c.classes = "1,0";  // reordered: class 1 (ring) becomes label 0
  c.init_from = pth;
  c.replace_head = true;
  c.freeze = "layer1";
  c.lr_backbone = 0.001;
  c.max_steps = 2;
  const TrainResult r = TrainSession(c).run();
  const Checkpoint out = load_checkpoint(r.checkpoint);
  EXPECT_EQ(out.model.at("fc.weight").shape(), (Shape{2, 16}));
  EXPECT_EQ(out.meta.classes, 2);
  const data::Dataset all = load_split("rings", "", data::Split::test);
  EXPECT_EQ(out.meta.class_names, (std::vector<std::string>{all.class_names[1], all.class_names[0]}));
  for (const auto& [name, t] : weights) {
    const bool frozen = name.rfind("stem.", 0) == 0 || name.rfind("layer1.", 0) == 0;
    if (frozen) {
      EXPECT_TRUE(same_bits(out.model.at(name), t)) << name << " changed but is frozen";
    }
    if (name.rfind("layer2.", 0) == 0) {
      EXPECT_FALSE(same_bits(out.model.at(name), t)) << name << " did not train";
    }
  }
  // Resume restores the transfer settings from the run.
  TrainConfig given;
  given.resume = run.str();
  const TrainConfig back = resumed_config(given, {"--resume"});
  EXPECT_EQ(back.freeze, "layer1");
  EXPECT_EQ(back.classes, "1,0");
  EXPECT_EQ(back.lr_backbone, 0.001);

  // Without --replace-head the file's 4-class head does not fit: an error naming the tensor and the flag.
  c.replace_head = false;
  c.out = run2.str();
  EXPECT_TRUE(test::throws_error([&] { TrainSession t(c); }, {"--init-from '", "fc.weight", "--replace-head"}));
}

// ---------------------------------------------------------------- FP16 with loss scaling

// The rings MLP at FP16 from a loss scale of 2^20: the first steps overflow (the loss gradient times 2^20 is past
// FP16's 65504) and are skipped until the scale has backed off; a growth interval of 3 then doubles it often.
TrainConfig fp16_config(const std::string& out) {
  TrainConfig c = rings_config(out);
  c.precision = Precision::fp16;
  c.loss_scale = parse_loss_scale("dynamic:1048576");
  c.loss_scale.growth_interval = 3;
  c.epochs = 4;
  c.lr = 0.2;
  c.schedule = parse_schedule("constant");
  return c;
}

// On emu (the tensor-core linear kernels at FP16): scaling, unscaling, the skip decision and the scale's update
// are kernels reading the scaler's state on the device; a step waits for nothing.
TEST(TrainSessionFp16, StepOnEmuPerformsNoHostSynchronisation) {
  TempDir d;
  TrainConfig c = fp16_config(d.str());
  c.device = kEmu;
  c.max_norm = 3;
  TrainSession s(c);
  s.loader().start_epoch(0);
  s.begin_epoch_metrics();
  data::Batch batch;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.loader().next(batch));
    const DeviceBatch on_device = s.upload(batch);
    const Counts st = count([&] { s.step(on_device); });
    EXPECT_EQ(st.syncs, 0) << "step " << s.step_count() << " waited for the device";
  }
}

// A short FP16 run learns, repeats bit for bit, skips the overflowing first steps (the scale backs off and grows
// again), and a run stopped at step 9 and resumed continues bitwise as the uninterrupted one: the checkpoint holds
// the scale and its growth tracker.
TEST(TrainSessionFp16, LearnsRepeatsAndResumesWithItsLossScale) {
  TempDir a, b, c;
  const TrainResult ra = TrainSession(fp16_config(a.str())).run();
  ASSERT_EQ(ra.history.size(), 4u);
  EXPECT_LT(ra.history.back().train_loss, 0.8 * ra.history.front().train_loss)
      << ra.history.front().train_loss << " -> " << ra.history.back().train_loss;
  const int64_t skipped = ra.history.back().skipped_steps;
  EXPECT_GE(skipped, 2) << "2^20 times the loss gradient overflows FP16";
  EXPECT_LT(skipped, 12);
  EXPECT_LT(ra.history.back().loss_scale, 1048576.0);
  const Checkpoint ca = load_checkpoint(ra.checkpoint);
  ASSERT_TRUE(ca.optimizer.count("grad_scaler"));
  const std::vector<float> state = ca.optimizer.at("grad_scaler").to_vector<float>();
  EXPECT_EQ(double(state[0]), ra.history.back().loss_scale);
  EXPECT_EQ(int64_t(state[3]), skipped);
  EXPECT_EQ(ca.meta.config["loss_scale"], "dynamic:1048576") << ca.meta.config.dump();
  EXPECT_EQ(ca.meta.config["loss_scale_growth_interval"], 3);

  const TrainResult rb = TrainSession(fp16_config(b.str())).run();
  const Checkpoint cb = load_checkpoint(rb.checkpoint);
  for (const auto& [name, t] : ca.model) EXPECT_TRUE(same_bits(t, cb.model.at(name))) << name << " differs run to run";

  TrainConfig part = fp16_config(c.str());
  part.max_steps = 9;  // 6 steps an epoch: inside the second epoch, between two growths
  TrainSession(part).run();
  TrainConfig given = fp16_config(c.str());
  given.resume = c.str();
  TrainConfig back = resumed_config(given, {"--resume"});
  EXPECT_EQ(back.loss_scale.growth_interval, 3);
  EXPECT_EQ(loss_scale_name(back.loss_scale), "dynamic:1048576");
  back.max_steps = 0;
  const TrainResult rc = TrainSession(back).run();
  const Checkpoint cc = load_checkpoint(rc.checkpoint);
  for (const auto& [name, t] : ca.model)
    EXPECT_TRUE(same_bits(t, cc.model.at(name))) << name << " differs after resume";
  for (const auto& [name, t] : ca.optimizer) {
    EXPECT_TRUE(same_bits(t, cc.optimizer.at(name))) << "optimizer state " << name << " differs after resume";
  }
}

TEST(MetricsOp, RefusesBadArgumentsByName) {
  ops::Context ctx(kEmu);
  Tensor sums = ops::metric_sums(ctx);
  const Tensor loss = Tensor::zeros({1}, DType::float32, kEmu), logits = Tensor::zeros({4, 3}, DType::float32, kEmu);
  const Tensor labels = Tensor::zeros({4}, DType::int64, kEmu);
  using test::throws_error;
  EXPECT_TRUE(throws_error([&] { ops::accumulate_metrics(ctx, loss, logits.to(kCPU), labels, sums, 0); },
                           {"accumulate_metrics", "'logits'", "cpu"}));
  EXPECT_TRUE(throws_error([&] { ops::accumulate_metrics(ctx, loss, logits, labels.narrow(0, 3), sums, 0); },
                           {"accumulate_metrics", "'labels'", "[3]"}));
  EXPECT_TRUE(throws_error([&] { ops::accumulate_metrics(ctx, logits, logits, labels, sums, 0); },
                           {"accumulate_metrics", "'loss'", "[4, 3]"}));
  Tensor wrong = Tensor::zeros({3}, DType::float64, kEmu);
  EXPECT_TRUE(throws_error([&] { ops::accumulate_metrics(ctx, loss, logits, labels, wrong, 0); },
                           {"accumulate_metrics", "'sums'", "[3]"}));
  Tensor conf = Tensor::zeros({3, 4}, DType::int64, kEmu);
  EXPECT_TRUE(throws_error([&] { ops::accumulate_metrics(ctx, loss, logits, labels, sums, 0, &conf); },
                           {"accumulate_metrics", "'confusion'", "[3, 4]"}));
  EXPECT_TRUE(throws_error([&] { ops::accumulate_metrics(ctx, loss, logits, labels, sums, -1); },
                           {"accumulate_metrics", "-1"}));
}

}  // namespace
}  // namespace fovea::nn
