// Issue 13, "never lose a user's work, never hang": one CLI voice across the commands, run folders (no silent
// overwrite, a lock, unique default names), outputs through symlinks and to devices, refusing an output that is
// an input, signals (a checkpoint, then exit 130/143), I/O failures that keep the previous file, and resume that
// restores the run's configuration. Helpers are tested in-process; the CLI only where the process is the point.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstring>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include "core/io.h"
#include "core/png_io.h"
#include "core/safetensors.h"
#include "layers/nn/models.h"
#include "layers/train/run_record.h"
#include "layers/train/session.h"
#include "layers/train/stop_signals.h"
#include "tests/cli_test_util.h"
#include "tests/temp_dir.h"

namespace fovea {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using test::run_fovea;

class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("fovea_run_safety_test") {}
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- item 6: one CLI voice

TEST(OneCliVoice, RangeErrorsAreTheSameInEveryCommand) {
  for (const std::string args : {"eval --checkpoint x.safetensors --batch 0", "profile train-step --batch 0",
                                 "parity --batch 0", "train --batch 0"}) {
    const CliResult r = run_fovea(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_TRUE(has(r.output, "fovea: error: --batch: must be > 0, got 0")) << args << "\n" << r.output;
    EXPECT_FALSE(has(r.output, "not in range")) << args << "\n" << r.output;
  }
}

TEST(OneCliVoice, RepeatsUnknownNamesAndFilesystemErrors) {
  // A repeated flag is named, in any command.
  CliResult r = run_fovea("eval --checkpoint a.safetensors --checkpoint b.safetensors");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "--checkpoint: given 2 times; give it once")) << r.output;
  EXPECT_FALSE(has(r.output, "At Most")) << r.output;
  // A choice names what is allowed.
  r = run_fovea("viz ckpt.safetensors --norm bright");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "--norm: must be one of tile, signed, global, clamp; got 'bright'")) << r.output;
  // bench --ops with a name that has no benchmark is a usage error, before anything is measured.
  r = run_fovea("bench --device cpu --ops convv --no-torch --out /nonexistent/never");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "--ops: 'convv'")) << r.output;
  // A filesystem failure is a runtime error (exit 1) in fovea's words: neither "internal" nor a source location.
  r = run_fovea(
      "train --device cpu --dataset rings --model linear --subset 64 --quiet --out /proc/fovea-cannot-exist/run");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "fovea: error: cannot create directories '/proc/fovea-cannot-exist/run'")) << r.output;
  EXPECT_FALSE(has(r.output, "internal")) << r.output;
  EXPECT_FALSE(has(r.output, ".cpp:")) << r.output;
}

// ---- item 1: run folders

template <class F>
std::string usage_error_of(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

// --out of a finished run is refused (naming --resume and --overwrite); --overwrite replaces its files; a
// run resuming that folder's own checkpoint may write there.
TEST(RunFolder, AnotherRunsFolderIsRefusedUnlessOverwriteOrResume) {
  TempDir d;
  const std::string run = d / "run";
  fs::create_directories(run);
  write_file_atomic(run + "/config.json", "{}\n");
  write_file_atomic(run + "/best.safetensors", "old");
  const std::string e = usage_error_of([&] { nn::RunRecord r(run, -1); });
  EXPECT_TRUE(has(e, "holds another run (config.json, best.safetensors)")) << e;
  EXPECT_TRUE(has(e, "--resume " + run)) << e;
  EXPECT_TRUE(has(e, "--overwrite")) << e;
  EXPECT_EQ(read_file(run + "/config.json"), "{}\n");  // untouched
  { nn::RunRecord resumed(run, 0, /*continues=*/true); }
  EXPECT_TRUE(fs::exists(run + "/best.safetensors"));
  { nn::RunRecord replaced(run, -1, false, /*overwrite=*/true); }
  EXPECT_FALSE(fs::exists(run + "/best.safetensors"));  // no stale best model of the old run
  EXPECT_FALSE(fs::exists(run + "/config.json"));
  // An empty folder, or one with unrelated files, is fine.
  fs::create_directories(d / "empty");
  write_file_atomic(d / "empty/notes.txt", "mine");
  { nn::RunRecord fresh(d / "empty", -1); }
  EXPECT_EQ(read_file(d / "empty/notes.txt"), "mine");
}

// Two runs into one folder: the second is refused while the first holds the lock, and may go on after it.
TEST(RunFolder, ALockKeepsTwoRunsApart) {
  TempDir d;
  auto first = std::make_unique<nn::RunRecord>(d / "run", -1);
  const std::string e = usage_error_of([&] { nn::RunRecord second(d / "run", -1, false, true); });
  EXPECT_TRUE(has(e, "is in use by another fovea process (pid " + std::to_string(getpid()) + ")")) << e;
  first.reset();
  nn::RunRecord third(d / "run", -1, false, true);
}

TEST(RunFolder, DefaultNamesAreUniqueWithinASecond) {
  const std::string a = nn::default_run_dir("small_cnn", "synthetic"),
                    b = nn::default_run_dir("small_cnn", "synthetic");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("runs/small_cnn-synthetic-", 0), 0u) << a;
}

// NAME.tmp.PID of a process that has died is removed; a live process's temporary file is left alone.
TEST(RunFolder, StaleTemporaryFilesOfDeadProcessesAreRemoved) {
  TempDir d;
  const pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  const std::string dead = d / ("checkpoint.safetensors.tmp." + std::to_string(child));
  const std::string live = d / ("checkpoint.safetensors.tmp." + std::to_string(getpid()));
  write_file_atomic(dead, "x");
  write_file_atomic(live, "y");
  { nn::RunRecord r(d.str(), -1); }
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));
}

// ---- item 2: outputs

// A symlinked output: the link's target is written (atomically) and the link stays a link, also when dangling.
TEST(Outputs, SymlinksAreWrittenThroughNotReplaced) {
  TempDir d;
  write_file_atomic(d / "real.json", "old");
  fs::create_symlink("real.json", d / "link.json");
  write_file_atomic(d / "link.json", "new");
  EXPECT_TRUE(fs::is_symlink(d / "link.json"));
  EXPECT_EQ(read_file(d / "real.json"), "new");
  fs::create_symlink(d / "later.json", d / "dangling.json");
  write_file_atomic(d / "dangling.json", "made");
  EXPECT_TRUE(fs::is_symlink(d / "dangling.json"));
  EXPECT_EQ(read_file(d / "later.json"), "made");
  for (const auto& e : fs::directory_iterator(d.str()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

// /dev/stdout and friends write to the open descriptor; a character device or a FIFO is written in place and
// stays what it was (`fovea filter in.png /dev/stdout` used to turn /dev/stdout into a regular file).
TEST(Outputs, DescriptorsDevicesAndFifosAreWrittenInPlace) {
  EXPECT_EQ(descriptor_path("/dev/stdout"), 1);
  EXPECT_EQ(descriptor_path("/dev/stderr"), 2);
  EXPECT_EQ(descriptor_path("/proc/self/fd/7"), 7);
  EXPECT_EQ(descriptor_path("/dev/fd/x"), -1);
  EXPECT_EQ(descriptor_path("out.png"), -1);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  write_file_atomic("/dev/fd/" + std::to_string(p[1]), "through the pipe");
  close(p[1]);
  char buf[64] = {};
  EXPECT_EQ(read(p[0], buf, sizeof buf), 16);
  close(p[0]);
  EXPECT_STREQ(buf, "through the pipe");

  write_file_atomic("/dev/null", "discarded");
  struct stat st;
  ASSERT_EQ(stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));

  TempDir d;
  ASSERT_EQ(mkfifo((d / "fifo").c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] {
    std::ifstream in(d / "fifo");
    got.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  });
  write_file_atomic(d / "fifo", "via fifo");
  reader.join();
  EXPECT_EQ(got, "via fifo");
  EXPECT_TRUE(fs::is_fifo(d / "fifo"));
}

// `fovea filter in.png /dev/stdout > out.png`: the PNG alone on stdout (the summary goes to stderr), and
// /dev/stdout is still the link it was.
TEST(Outputs, FilterToStdout) {
  TempDir d;
  Tensor img = Tensor::empty({3, 6, 5});
  for (int64_t i = 0; i < img.numel(); ++i) img.data<float>()[i] = float(i % 7) / 6.0f;
  write_png(d / "in.png", img);
  const CliResult r = test::run_command("(" + std::string(FOVEA_BINARY) + " filter " + (d / "in.png") +
                                        " /dev/stdout --kernel box-blur > " + (d / "out.png") + ")");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "-> /dev/stdout")) << r.output;  // the summary, on stderr
  const PngImage out = read_png(d / "out.png");
  EXPECT_EQ(out.pixels.size(1), 6);
  const std::string bytes = read_file(d / "out.png");  // nothing after the PNG's last chunk
  ASSERT_GE(bytes.size(), 12u);
  EXPECT_EQ(bytes.substr(bytes.size() - 12, 8), std::string("\0\0\0\0IEND", 8));
  EXPECT_TRUE(fs::is_symlink("/dev/stdout"));
}

TEST(Outputs, AnOutputThatIsAnInputIsRefused) {
  TempDir d;
  write_file_atomic(d / "ckpt.safetensors", "weights");
  fs::create_hard_link(d / "ckpt.safetensors", d / "hard.json");
  fs::create_symlink(d / "ckpt.safetensors", d / "soft.json");
  for (const std::string& out : {d / "ckpt.safetensors", d / "hard.json", d / "soft.json"}) {
    const std::string e =
        usage_error_of([&] { refuse_output_over_input(out, "--json", d / "ckpt.safetensors", "--checkpoint"); });
    EXPECT_TRUE(has(e, "--json: '" + out + "' is the input --checkpoint")) << e;
  }
  EXPECT_NO_THROW(refuse_output_over_input(d / "new.json", "--json", d / "ckpt.safetensors", "--checkpoint"));
  // Through the command: `fovea eval --json` aimed at the checkpoint leaves it whole.
  const CliResult r = run_fovea("eval --checkpoint " + (d / "ckpt.safetensors") + " --json " + (d / "soft.json"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "is the input --checkpoint")) << r.output;
  EXPECT_EQ(read_file(d / "ckpt.safetensors"), "weights");
}

// ---- item 4: signals and I/O failures

nn::TrainConfig tiny_run(const std::string& out) {
  nn::TrainConfig c;
  c.subset = 96;
  c.batch = 16;  // 6 steps an epoch
  c.epochs = 1;
  c.model = "conv:4:3:pad=1,bn,relu,maxpool:4,dropout:0.2,linear";
  c.augment = data::parse_augment("standard");
  c.seed = 5;
  c.progress = false;
  c.out = out;
  c.command = "fovea train (the original command)";
  return c;
}

// The cheap kind of run for tests that need a session but not images: the rings dataset (2-D points), an MLP
// with dropout (random masks of the step), no augmentation. A tenth of the setup time of tiny_run.
nn::TrainConfig tiny_mlp_run(const std::string& out) {
  nn::TrainConfig c = tiny_run(out);
  c.dataset = "rings";
  c.model = "linear:32,relu,dropout:0.2,linear";
  c.augment = {};
  return c;
}

void expect_same_tensors(const std::string& a, const std::string& b) {
  const Safetensors x = read_safetensors(a), y = read_safetensors(b);
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (const auto& [name, t] : x.tensors) {
    ASSERT_TRUE(y.tensors.count(name)) << name;
    ASSERT_EQ(t.nbytes(), y.tensors.at(name).nbytes()) << name;
    EXPECT_EQ(std::memcmp(t.raw_data(), y.tensors.at(name).raw_data(), t.nbytes()), 0) << name << " differs";
  }
}

// SIGTERM in the middle of an epoch: the step finishes, the partial epoch's checkpoint is written, the exit
// code is 143; resuming it (cosine schedule, dropout, shuffled data) ends bit for bit where the uninterrupted run
// ends.
TEST(Signals, SigtermWritesACheckpointAndTheResumedRunIsBitExact) {
  TempDir d;
  nn::TrainSession whole(tiny_mlp_run(d / "whole"));
  const nn::TrainResult w = whole.run();
  int code = 0;
  {
    nn::StopOnSignals signals;
    nn::TrainSession s(tiny_mlp_run(d / "cut"));
    signals.attach(s);
    s.after_step = [](nn::TrainSession& t) {
      if (t.step_count() == 4) std::raise(SIGTERM);
    };
    const nn::TrainResult r = s.run();
    signals.detach();
    code = signals.exit_code();
    EXPECT_TRUE(r.stopped);
    EXPECT_EQ(r.steps, 4);
    EXPECT_TRUE(fs::exists(r.checkpoint));
  }
  EXPECT_EQ(code, 143);
  // --resume RUN_DIR and nothing else: the configuration (seed, augmentation, model, schedule) comes from the
  // checkpoint, not from the defaults.
  nn::TrainConfig given;
  given.resume = d / "cut";
  given.progress = false;
  given.command = "fovea train --resume cut";
  const nn::TrainResult rest = nn::TrainSession(nn::resumed_config(given, {"--resume"})).run();
  EXPECT_EQ(rest.steps, w.steps);
  expect_same_tensors(w.checkpoint, rest.checkpoint);
  // config.json keeps the command that started the run and records the resume.
  const nlohmann::json cfg = nlohmann::json::parse(read_file(d / "cut/config.json"));
  EXPECT_EQ(cfg["command"], "fovea train (the original command)") << cfg.dump();
  ASSERT_EQ(cfg["resumes"].size(), 1u) << cfg.dump();
  EXPECT_EQ(cfg["resumes"][0]["command"], "fovea train --resume cut");
  EXPECT_EQ(cfg["resumes"][0]["step"], 4);
  EXPECT_EQ(cfg["config"]["seed"], 5);
  EXPECT_EQ(cfg["config"]["model"], "linear:32,relu,dropout:0.2,linear");
}

// ---- item 3: resume restores the configuration; a differing flag is refused by name

TEST(Resume, RestoresTheConfigurationAndRefusesDifferingFlags) {
  TempDir d;
  nn::TrainConfig original = tiny_run(d / "run");
  original.max_steps = 2;
  original.lr = 0.05;
  original.schedule = nn::parse_schedule("step:1:0.5");
  nn::TrainSession(original).run();
  nn::TrainConfig given;
  given.resume = d / "run";
  const nn::TrainConfig c = nn::resumed_config(given, {"--resume"});
  EXPECT_EQ(c.resume, d / "run/checkpoint.safetensors");
  EXPECT_EQ(c.model, original.model);
  EXPECT_EQ(c.seed, 5u);
  EXPECT_EQ(c.lr, 0.05);
  EXPECT_EQ(c.subset, 96);
  EXPECT_EQ(c.batch, 16);
  EXPECT_EQ(nn::schedule_name(c.schedule), "step:1:0.5");
  EXPECT_EQ(data::augment_spec(c.augment), "crop:4,flip");
  EXPECT_EQ(c.max_steps, 2);
  struct Case {
    std::string flag;
    std::function<void(nn::TrainConfig&)> set;
    std::string expect;
  };
  for (const Case& k : {
           Case{"--lr", [](nn::TrainConfig& x) { x.lr = 0.5; }, "--lr 0.5 differs from the run's 0.05"},
           Case{"--seed", [](nn::TrainConfig& x) { x.seed = 6; }, "--seed 6 differs from the run's 5"},
           Case{"--model", [](nn::TrainConfig& x) { x.model = "small_cnn"; }, "--model \"small_cnn\" differs"},
           Case{"--augment", [](nn::TrainConfig& x) { x.augment = {}; }, "--augment \"none\" differs"},
       }) {
    nn::TrainConfig g = given;
    k.set(g);
    const std::string e = usage_error_of([&] { nn::resumed_config(g, {"--resume", k.flag}); });
    EXPECT_TRUE(has(e, "--resume: " + k.expect)) << e;
  }
  // The same value is no conflict; more epochs and steps are allowed.
  nn::TrainConfig same = given;
  same.lr = 0.05;
  same.epochs = 4;
  same.max_steps = 0;
  const nn::TrainConfig longer = nn::resumed_config(same, {"--resume", "--lr", "--epochs", "--max-steps"});
  EXPECT_EQ(longer.epochs, 4);
  EXPECT_EQ(longer.max_steps, 0);
}

// A second Ctrl-C does not wait for the step: the process exits at once with 130.
TEST(Signals, ASecondSigintExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir d;
  EXPECT_EXIT(
      {
        nn::StopOnSignals signals;
        nn::TrainSession s(tiny_mlp_run(d / "run"));
        signals.attach(s);
        std::raise(SIGINT);
        std::raise(SIGINT);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(130), "SIGINT again: exiting at once");
}

// A file-size limit (ulimit -f) with SIGXFSZ ignored, as fovea's main() does: a clear error naming the file, the
// previous file kept, no temporary file left behind.
TEST(IoFailures, FileSizeLimitIsAClearErrorAndKeepsThePreviousFile) {
  TempDir d;
  write_file_atomic(d / "checkpoint.safetensors", "previous");
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit;
  getrlimit(RLIMIT_FSIZE, &old_limit);
  rlimit small = old_limit;
  small.rlim_cur = 1024;
  setrlimit(RLIMIT_FSIZE, &small);
  std::string error;
  try {
    write_file_atomic(d / "checkpoint.safetensors", std::string(4096, 'x'));
  } catch (const Error& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(has(error, "cannot write '" + (d / "checkpoint.safetensors") + "': File too large")) << error;
  EXPECT_EQ(read_file(d / "checkpoint.safetensors"), "previous");
  for (const auto& e : fs::directory_iterator(d.str()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

// The same failure in the middle of training: the error says at which step and that the last checkpoint is kept.
TEST(IoFailures, ACheckpointThatCannotBeWrittenKeepsThePreviousOne) {
  TempDir d;
  nn::TrainConfig c = tiny_mlp_run(d.str());
  c.epochs = 2;
  nn::TrainSession s(c);
  s.run_epoch();
  const std::string before = read_file(d / "checkpoint.safetensors");
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit;
  getrlimit(RLIMIT_FSIZE, &old_limit);
  rlimit small = old_limit;
  small.rlim_cur = 512;
  setrlimit(RLIMIT_FSIZE, &small);
  std::string error;
  try {
    s.run_epoch();
  } catch (const Error& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(
      has(error, "File too large (at step 12); the previous checkpoint " + (d / "checkpoint.safetensors") + " is kept"))
      << error;
  EXPECT_EQ(read_file(d / "checkpoint.safetensors"), before);
}

// Through the command, under `ulimit -f`: not killed by SIGXFSZ (fovea's main ignores it) but a runtime error
// (exit 1) naming the file, without a source location.
TEST(IoFailures, FileSizeLimitThroughTheCommand) {
  TempDir d;
  const CliResult r =
      test::run_command("ulimit -f 1; " + std::string(FOVEA_BINARY) +
                        " train --device cpu --dataset rings --model linear --subset 64 --quiet --out " + (d / "run"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "fovea: error: cannot write '" + (d / "run/")) && has(r.output, "': File too large"))
      << r.output;
  EXPECT_FALSE(has(r.output, ".cpp:")) << r.output;
  for (const auto& e : fs::directory_iterator(d / "run"))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

// A folder the process may not write to (not testable as root, who may write anywhere).
TEST(IoFailures, ReadOnlyFolderIsAClearError) {
  if (geteuid() == 0) GTEST_SKIP() << "running as root: a read-only folder is writable to root";
  TempDir d;
  write_file_atomic(d / "metrics.csv", "previous");
  fs::permissions(d.str(), fs::perms::owner_read | fs::perms::owner_exec);
  std::string error;
  try {
    write_file_atomic(d / "metrics.csv", "new");
  } catch (const Error& e) {
    error = e.what();
  }
  fs::permissions(d.str(), fs::perms::owner_all);
  EXPECT_TRUE(has(error, "cannot write '" + (d / "metrics.csv") + "': Permission denied")) << error;
  EXPECT_EQ(read_file(d / "metrics.csv"), "previous");
}

// Ctrl-C through the command: it says where the checkpoint is and how to continue, and exits 130.
TEST(Signals, CtrlCThroughTheCommand) {
  TempDir d;
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    execl(FOVEA_BINARY, "fovea", "train", "--device", "cpu", "--dataset", "rings", "--model", "linear:32,relu,linear",
          "--subset", "256", "--batch", "32", "--epochs", "100", "--out", (d / "run").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  bool sent = false;
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) {
    text.append(buf, size_t(n));
    if (!sent && has(text, "epoch 1/100 step 1/8")) {  // a step was made: interrupt it
      kill(pid, SIGINT);
      sent = true;
    }
  }
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << text;
  EXPECT_EQ(WEXITSTATUS(status), 130) << text;
  EXPECT_TRUE(has(text, "fovea: stopped by SIGINT after step")) << text;
  EXPECT_TRUE(has(text, "continue with: fovea train --resume " + (d / "run"))) << text;
  EXPECT_TRUE(fs::exists(d / "run/checkpoint.safetensors"));
}

// ---- item 5: inputs

// A FIFO or a device as an input is refused at once, naming it: reading it could block forever (a FIFO with no
// writer) or never end (/dev/zero).
TEST(Inputs, FifosAndDevicesAreRefusedNotRead) {
  TempDir d;
  ASSERT_EQ(mkfifo((d / "images.fifo").c_str(), 0600), 0);
  std::string e = usage_error_of([&] { read_file(d / "images.fifo"); });
  EXPECT_TRUE(has(e, "cannot read '" + (d / "images.fifo") + "': not a regular file (a FIFO)")) << e;
  e = usage_error_of([] { read_file("/dev/zero"); });
  EXPECT_TRUE(has(e, "not a regular file (a character device)")) << e;
  e = usage_error_of([&] { read_file(d.str()); });
  EXPECT_TRUE(has(e, "it is a directory")) << e;
}

// A spec nested thousands deep is refused before anything is built (it used to need memory quadratic in the
// depth: 24 GB at 5,000), with the limit in the message.
TEST(Inputs, ModelSpecNestingHasAStatedLimit) {
  std::string spec;
  for (int i = 0; i < 5000; ++i) spec += "res(";
  spec += "relu";
  for (int i = 0; i < 5000; ++i) spec += ")";
  const std::string e = usage_error_of([&] { nn::build_model(spec + ",linear", Shape({1, 8, 8}), 10); });
  EXPECT_TRUE(has(e, "model spec: blocks nested 5000 deep, more than the limit of 32")) << e;
  const std::string ok = "res(res(relu)),linear";
  EXPECT_NO_THROW(nn::build_model(ok, Shape({1, 8, 8}), 10));
}

// --batch and --eval-batch far beyond the data size buffers by the data (one batch of everything), instead of
// allocating terabytes.
TEST(Inputs, BatchFlagsBeyondTheDataDoNotSizeAllocations) {
  TempDir d;
  nn::TrainConfig c = tiny_mlp_run(d.str());
  c.batch = int64_t(1) << 40;
  c.eval_batch = int64_t(1) << 40;
  nn::TrainSession s(c);
  EXPECT_EQ(s.steps_per_epoch(), 1);
  const nn::TrainResult r = s.run();
  EXPECT_EQ(r.steps, 1);
  EXPECT_EQ(r.history.size(), 1u);
}

}  // namespace
}  // namespace fovea
