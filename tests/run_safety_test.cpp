// Issue 13, "never lose a user's work, never hang": one CLI voice across the commands, run folders (no silent
// overwrite, a lock, unique default names), outputs through symlinks and to devices, refusing an output that is
// an input, signals (a checkpoint, then exit 130/143), I/O failures that keep the previous file, and resume that
// restores the run's configuration. Helpers are tested in-process; the CLI only where the process is the point.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "core/io.h"
#include "layers/train/run_record.h"
#include "tests/cli_test_util.h"

namespace fovea {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using test::run_fovea;

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() /
              ("fovea_run_safety_test_" + std::to_string(getpid()) + "_" + std::to_string(counter_++))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
  static inline int counter_ = 0;
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
  r = run_fovea("train --device cpu --subset 64 --epochs 1 --quiet --out /proc/fovea-cannot-exist/run");
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

TEST(Outputs, AnOutputThatIsAnInputIsRefused) {
  TempDir d;
  write_file_atomic(d / "ckpt.safetensors", "weights");
  fs::create_hard_link(d / "ckpt.safetensors", d / "hard.json");
  fs::create_symlink(d / "ckpt.safetensors", d / "soft.json");
  for (const std::string out : {d / "ckpt.safetensors", d / "hard.json", d / "soft.json"}) {
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

}  // namespace
}  // namespace fovea
