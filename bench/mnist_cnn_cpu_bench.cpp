// Training throughput of the CPU reference (fovea::ref) on the classic MNIST CNN, and of PyTorch on
// the same net in the same run (bench/mnist_cnn_torch.py) when /usr/bin/python3 has torch:
//   conv 1->32 3x3, ReLU, conv 32->64 3x3, ReLU, maxpool 2, fc 9216->128, ReLU, fc 128->10,
//   softmax cross-entropy, SGD (lr 0.01, momentum 0.9), random 28x28 inputs and labels.
// All buffers are allocated once; the timed loop only calls fovea::ref functions.
//
//   mnist_cnn_cpu_bench [--batch 64] [--warmup 5] [--steps 30] [--threads T] [--profile] [--no-torch]
//                       [--passive] [--python /usr/bin/python3] [--torch-script PATH]
//
// --passive re-runs the bench with OMP_WAIT_POLICY=PASSIVE (libgomp reads it only at start-up), for
// fovea and for the PyTorch child alike: on a machine busy with other work, threads that spin at
// the end of every parallel region burn the CPU share their preempted partner needs, and both
// fovea and PyTorch run 2-3x slower than with passive waiting. On an idle machine it changes little.
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/parse.h"
#include "cpu_reference/activations.h"
#include "cpu_reference/conv2d.h"
#include "cpu_reference/linear.h"
#include "cpu_reference/optimizers.h"
#include "cpu_reference/pooling.h"
#include "cpu_reference/softmax.h"
#include "cpu_reference/threading.h"
#include "layers/ops/ops.h"

#ifndef FOVEA_SOURCE_DIR
#define FOVEA_SOURCE_DIR "."
#endif

namespace {

using Clock = std::chrono::steady_clock;
using namespace fovea;

struct Options {
  int64_t batch = 64, warmup = 5, steps = 30;
  int threads = 0;  // 0: OpenMP's default
  bool profile = false, torch = true, passive = false;
  std::string python = "/usr/bin/python3";
  std::string torch_script = FOVEA_SOURCE_DIR "/bench/mnist_cnn_torch.py";
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "mnist_cnn_cpu_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto count = [&](int64_t lo) {  // a whole number >= lo, or exit 2 naming the flag
      const char* text = next();
      const std::optional<int64_t> v = fovea::try_parse_int(text);
      if (!v || *v < lo) {
        std::fprintf(stderr, "mnist_cnn_cpu_bench: %s must be an integer >= %lld, got '%s'\n", a.c_str(),
                     static_cast<long long>(lo), text);
        std::exit(2);
      }
      return *v;
    };
    if (a == "--batch")
      o.batch = count(1);
    else if (a == "--warmup")
      o.warmup = count(0);
    else if (a == "--steps")
      o.steps = count(1);
    else if (a == "--threads")
      o.threads = int(count(0));
    else if (a == "--profile")
      o.profile = true;
    else if (a == "--no-torch")
      o.torch = false;
    else if (a == "--passive")
      o.passive = true;
    else if (a == "--python")
      o.python = next();
    else if (a == "--torch-script")
      o.torch_script = next();
    else {
      std::fprintf(stderr, "mnist_cnn_cpu_bench: unknown argument %s (see the header of %s)\n", a.c_str(), __FILE__);
      std::exit(2);
    }
  }
  if (o.batch <= 0 || o.steps <= 0 || o.warmup < 0) {
    std::fprintf(stderr, "mnist_cnn_cpu_bench: --batch and --steps must be > 0, --warmup >= 0\n");
    std::exit(2);
  }
  return o;
}

// Per-op wall time, enabled with --profile.
struct Profiler {
  bool on = false;
  std::map<std::string, double> seconds;
  template <typename F>
  void operator()(const char* name, F&& f) {
    if (!on) return f();
    const auto t0 = Clock::now();
    f();
    seconds[name] += std::chrono::duration<double>(Clock::now() - t0).count();
  }
};

struct Param {
  std::vector<float> w, grad, momentum;
  explicit Param(size_t n, float scale, uint64_t seed) : w(n), grad(n), momentum(n) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> d(-scale, scale);
    for (float& v : w) v = d(rng);
  }
};

struct Net {
  int64_t B;
  Conv2dParams c1, c2;
  Pool2dParams pool;
  LinearParams f1, f2;
  CrossEntropyParams ce;
  SgdParams sgd;
  Param w1, b1, w2, b2, w3, b3, w4, b4;
  std::vector<float> x, h1, h2, m, h3, logits, dlogits, dh3, dm, dh2, dh1;
  std::vector<int64_t> labels, idx;
  int64_t step_count = 0;

  explicit Net(int64_t batch)
      : B(batch),
        c1(conv(batch, 1, 28, 32)),
        c2(conv(batch, 32, 26, 64)),
        pool(pool2(batch, 64, 24)),
        f1(lin(batch, 9216, 128)),
        f2(lin(batch, 128, 10)),
        // PyTorch's default init bound is 1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)).
        w1(32 * 9, 1.0f / 3.0f, 1),
        b1(32, 1.0f / 3.0f, 2),
        w2(64 * 32 * 9, 1.0f / std::sqrt(288.0f), 3),
        b2(64, 1.0f / std::sqrt(288.0f), 4),
        w3(128 * 9216, 1.0f / 96.0f, 5),
        b3(128, 1.0f / 96.0f, 6),
        w4(10 * 128, 1.0f / std::sqrt(128.0f), 7),
        b4(10, 1.0f / std::sqrt(128.0f), 8) {
    ce.N = batch, ce.C = 10;
    sgd.lr = 0.01, sgd.momentum = 0.9;
    x.resize(c1.x_size()), h1.resize(c1.y_size()), h2.resize(c2.y_size()), m.resize(pool.y_size());
    idx.resize(pool.y_size()), h3.resize(batch * 128), logits.resize(batch * 10), dlogits.resize(batch * 10);
    dh3.resize(batch * 128), dm.resize(pool.y_size()), dh2.resize(c2.y_size()), dh1.resize(c1.y_size());
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<float> pix(0.0f, 1.0f);
    for (float& v : x) v = pix(rng);
    labels.resize(batch);
    for (auto& l : labels) l = int64_t(rng() % 10);
  }
  static Conv2dParams conv(int64_t n, int64_t c, int64_t hw, int64_t k) {
    Conv2dParams p;
    p.N = n, p.C = c, p.H = p.W = hw, p.K = k, p.R = p.S = 3;
    return p;
  }
  static Pool2dParams pool2(int64_t n, int64_t c, int64_t hw) {
    Pool2dParams p;
    p.N = n, p.C = c, p.H = p.W = hw;  // 2x2, stride 2
    return p;
  }
  static LinearParams lin(int64_t n, int64_t in, int64_t out) {
    LinearParams p;
    p.N = n, p.in_features = in, p.out_features = out;
    return p;
  }

  // One training step; returns the loss.
  float step(Profiler& prof) {
    using namespace fovea::ref;
    float loss = 0.0f;
    // forward (ReLU in place: its backward reads the output)
    prof("conv1 fwd", [&] { conv2d_forward(c1, x.data(), w1.w.data(), b1.w.data(), h1.data()); });
    prof("relu", [&] { relu_forward(int64_t(h1.size()), h1.data(), h1.data()); });
    prof("conv2 fwd", [&] { conv2d_forward(c2, h1.data(), w2.w.data(), b2.w.data(), h2.data()); });
    prof("relu", [&] { relu_forward(int64_t(h2.size()), h2.data(), h2.data()); });
    prof("maxpool fwd", [&] { maxpool2d_forward(pool, h2.data(), m.data(), idx.data()); });
    // flatten: m [B, 64, 12, 12] is read as [B, 9216] (cpu_reference/flatten.h)
    prof("fc1 fwd", [&] { linear_forward(f1, m.data(), w3.w.data(), b3.w.data(), h3.data()); });
    prof("relu", [&] { relu_forward(int64_t(h3.size()), h3.data(), h3.data()); });
    prof("fc2 fwd", [&] { linear_forward(f2, h3.data(), w4.w.data(), b4.w.data(), logits.data()); });
    prof("cross_entropy", [&] {
      loss = cross_entropy_forward(ce, logits.data(), labels.data());
      cross_entropy_backward(ce, logits.data(), labels.data(), 1.0f, dlogits.data());
    });
    // backward
    prof("fc2 bwd", [&] {
      linear_backward_weight(f2, h3.data(), dlogits.data(), w4.grad.data());
      linear_backward_bias(f2, dlogits.data(), b4.grad.data());
      linear_backward_data(f2, dlogits.data(), w4.w.data(), dh3.data());
    });
    prof("relu bwd", [&] { relu_backward(int64_t(h3.size()), h3.data(), dh3.data(), dh3.data()); });
    prof("fc1 bwd", [&] {
      linear_backward_weight(f1, m.data(), dh3.data(), w3.grad.data());
      linear_backward_bias(f1, dh3.data(), b3.grad.data());
      linear_backward_data(f1, dh3.data(), w3.w.data(), dm.data());
    });
    prof("maxpool bwd", [&] { maxpool2d_backward(pool, dm.data(), idx.data(), dh2.data()); });
    prof("relu bwd", [&] { relu_backward(int64_t(h2.size()), h2.data(), dh2.data(), dh2.data()); });
    prof("conv2 bwd filter", [&] { conv2d_backward_filter(c2, h1.data(), dh2.data(), w2.grad.data()); });
    prof("conv2 bwd bias", [&] { conv2d_backward_bias(c2, dh2.data(), b2.grad.data()); });
    prof("conv2 bwd data", [&] { conv2d_backward_data(c2, dh2.data(), w2.w.data(), dh1.data()); });
    prof("relu bwd", [&] { relu_backward(int64_t(h1.size()), h1.data(), dh1.data(), dh1.data()); });
    prof("conv1 bwd filter", [&] { conv2d_backward_filter(c1, x.data(), dh1.data(), w1.grad.data()); });
    prof("conv1 bwd bias", [&] { conv2d_backward_bias(c1, dh1.data(), b1.grad.data()); });
    // (no data gradient for the input images, as in PyTorch)
    ++step_count;
    prof("sgd", [&] {
      for (Param* p : {&w1, &b1, &w2, &b2, &w3, &b3, &w4, &b4})
        sgd_step(sgd, int64_t(p->w.size()), p->w.data(), p->grad.data(), p->momentum.data(), step_count);
    });
    return loss;
  }
};

// Runs the PyTorch anchor; returns its images/s or a negative value when unavailable.
double run_torch(const Options& o, int threads) {
  const std::string check = o.python + " -c 'import torch' >/dev/null 2>&1";
  if (std::system(check.c_str()) != 0) {
    std::printf("torch: not available from %s (skipped)\n", o.python.c_str());
    return -1.0;
  }
  const std::string cmd = o.python + " " + o.torch_script + " --threads " + std::to_string(threads) + " --batch " +
                          std::to_string(o.batch) + " --warmup " + std::to_string(o.warmup) + " --steps " +
                          std::to_string(o.steps) + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -1.0;
  double ips = -1.0;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    std::fputs(line, stdout);
    if (std::strncmp(line, "torch images/s:", 15) == 0) {
      std::string_view v(line + 15);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
      ips = fovea::try_parse_float(v).value_or(-1.0);  // -1: not a number, reported like a failed run
    }
  }
  if (pclose(pipe) != 0) std::printf("torch: %s failed\n", o.torch_script.c_str());
  return ips;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (o.passive && !(policy && std::string(policy) == "PASSIVE")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    std::perror("mnist_cnn_cpu_bench: re-exec with OMP_WAIT_POLICY=PASSIVE failed");
    return 1;
  }
  std::printf("OMP_WAIT_POLICY=%s (fovea and torch)\n", policy ? policy : "(unset)");
  if (o.threads > 0) ref::set_num_threads(o.threads);
  const int threads = ref::num_threads();
  Net net(o.batch);
  Profiler prof;
  float loss0 = 0.0f, loss = 0.0f;
  for (int64_t i = 0; i < o.warmup; ++i) loss = net.step(prof);
  loss0 = loss;
  prof.on = o.profile;
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < o.steps; ++i) loss = net.step(prof);
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  const double ips = double(o.batch * o.steps) / dt;
  std::printf("fovea::ref threads %d batch %lld steps %lld: %.2f ms/step (loss %.4f after warm-up, %.4f at the end)\n",
              threads, (long long)o.batch, (long long)o.steps, dt / double(o.steps) * 1e3, loss0, loss);
  std::printf("fovea images/s: %.1f\n", ips);
  if (o.profile) {
    double total = 0.0;
    for (const auto& [name, s] : prof.seconds) total += s;
    for (const auto& [name, s] : prof.seconds)
      std::printf("  %-18s %8.2f ms/step %5.1f%%\n", name.c_str(), s / double(o.steps) * 1e3, 100.0 * s / total);
  }
  if (o.torch) {
    const double tips = run_torch(o, threads);
    if (tips > 0) std::printf("fovea / torch: %.2f\n", ips / tips);
  }
  return 0;
}
