// `fovea predict` (apps/predict.cpp) against torchvision: for a synthetic photo as JPEG and PNG and the
// same random resnet18 weights (a .pth written by torch.save; tests/torchvision_fixtures.py), fovea's
// top-5 labels are torchvision's, in order, with the same softmax probabilities; --grid draws the
// figure; a missing weights file, an unreadable image, a wrong model/weights pair and a --grid over a
// photo each exit 2 naming the file. Skips with the reason when /usr/bin/python3 lacks torch or torchvision.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "core/png_io.h"
#include "tests/cli_test_util.h"
#include "tests/python_util.h"

namespace fovea::test {
namespace {

namespace fs = std::filesystem;

struct Guess {
  int64_t index;
  double percent;
  std::string label;
};

// The ranked lines printed under `image`: "   1.  18.354%   828  strainer".
std::vector<Guess> guesses_for(const std::string& output, const std::string& image) {
  std::istringstream in(output);
  std::string line;
  bool inside = false;
  std::vector<Guess> out;
  static const std::regex ranked(R"(^\s+\d+\.\s+([0-9.]+)%\s+(\d+)\s+(.+)$)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (line == image) {
      inside = true;
    } else if (inside && std::regex_match(line, m, ranked)) {
      out.push_back({std::stoll(m[2]), std::stod(m[1]), m[3]});
    } else if (inside) {
      break;
    }
  }
  return out;
}

TEST(Predict, TopFiveIsTorchvisionsAndBadInputsNameTheFile) {
  std::string skip, error;
  const std::string dir =
      python_fixtures("tests/torchvision_fixtures.py", {}, "torch, torchvision, numpy, PIL", &skip, &error);
  if (dir.empty()) {
    if (!skip.empty()) GTEST_SKIP() << skip;
    FAIL() << error;
  }
  std::ifstream in(dir + "/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(in);
  const std::string weights = dir + "/predict_resnet18.pth";
  const std::string grid = (fs::temp_directory_path() / ("fovea_predict_test_" + std::to_string(::getpid()) + ".png"));
  const std::string jpg = dir + "/photo.jpg", png = dir + "/photo.png";

  const CliResult r = run_fovea("predict --model resnet18 --device cpu --weights " + weights + " --grid " + grid + " " +
                                jpg + " " + png);
  ASSERT_EQ(r.code, 0) << r.output;
  for (const auto& [name, file] : {std::pair{"photo.jpg", jpg}, std::pair{"photo.png", png}}) {
    SCOPED_TRACE(name);
    const nlohmann::json& want = manifest["predict"][name];
    const std::vector<Guess> got = guesses_for(r.output, file);
    ASSERT_EQ(got.size(), 5u) << r.output;
    for (size_t k = 0; k < 5; ++k) {
      EXPECT_EQ(got[k].index, want["indices"][k].get<int64_t>()) << "rank " << k + 1 << "\n" << r.output;
      EXPECT_EQ(got[k].label, want["labels"][k].get<std::string>());
      // Printed to 0.001 percentage points.
      EXPECT_NEAR(got[k].percent, 100 * want["probabilities"][k].get<double>(), 0.0011) << "rank " << k + 1;
    }
  }
  // The figure: two photos side by side (224 pixels and an 8-pixel margin each), three lines of text under them.
  const PngImage img = read_png(grid);
  EXPECT_EQ(img.pixels.shape(), Shape({3, 8 + 224 + 4 + 3 * 11 + 8, 8 + 2 * (224 + 8)}));
  fs::remove(grid);

  // --topk
  const CliResult top2 = run_fovea("predict --model resnet18 --device cpu --topk 2 --weights " + weights + " " + jpg);
  ASSERT_EQ(top2.code, 0) << top2.output;
  EXPECT_EQ(guesses_for(top2.output, jpg).size(), 2u) << top2.output;

  // Bad inputs: exit 2, the file named.
  const CliResult missing = run_fovea("predict --model resnet18 --device cpu --weights /nonexistent/w.pth " + jpg);
  EXPECT_EQ(missing.code, 2) << missing.output;
  EXPECT_NE(missing.output.find("/nonexistent/w.pth"), std::string::npos) << missing.output;
  const std::string junk = grid + ".jpg";
  std::ofstream(junk) << "not an image";
  const CliResult bad = run_fovea("predict --model resnet18 --device cpu --weights " + weights + " " + junk);
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find(junk), std::string::npos) << bad.output;
  fs::remove(junk);
  const CliResult pair = run_fovea("predict --model resnet34 --device cpu --weights " + weights + " " + jpg);
  EXPECT_EQ(pair.code, 2) << pair.output;
  EXPECT_NE(pair.output.find(weights), std::string::npos) << pair.output;
  EXPECT_NE(pair.output.find("layer1.2.conv1.weight"), std::string::npos) << pair.output;
  // --grid over one of the photos is refused before anything is written.
  const auto size_before = fs::file_size(png);
  const CliResult over =
      run_fovea("predict --model resnet18 --device cpu --weights " + weights + " --grid " + png + " " + png);
  EXPECT_EQ(over.code, 2) << over.output;
  EXPECT_NE(over.output.find("--grid"), std::string::npos) << over.output;
  EXPECT_EQ(fs::file_size(png), size_before);
}

}  // namespace
}  // namespace fovea::test
