// `fovea profile` end to end (apps/profile.cpp): the metrics table, the cost model, CSV and JSON, a training step's
// launches and host synchronisations, and its errors. The numbers themselves are tested in emu_lab_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cli_test_util.h"

namespace fovea {
namespace {

using test::run_fovea;

std::string temp_dir(const std::string& name) {
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("fovea_profile_test_" + name + "_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(ProfileCli, ConvFpropPrintsSitesAndTheModelAndWritesCsvAndJson) {
  const std::string dir = temp_dir("conv");
  const auto r = run_fovea("profile conv2d --x 2,3,8,8 --w 4,3,3,3 --attr pad=1 --gpu h100 --csv " + dir +
                           "/p.csv --json " + dir + "/p.json");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* part : {"=== conv2d fprop x[2, 3, 8, 8] w[4, 3, 3, 3]", "sectors/req", "wavefronts/req",
                           "kernels/conv2d_igemm", "model h100:", "H100 SXM5 80GB", "not a measurement"})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << "\n" << r.output;
  const nlohmann::json j = read_json(dir + "/p.json");
  ASSERT_EQ(j["sections"].size(), 1u);
  const auto& kernels = j["sections"][0]["kernels"];
  ASSERT_FALSE(kernels.empty());
  double flop = 0;
  for (const auto& k : kernels) {
    flop += k["flop"].get<double>();
    EXPECT_GT(k["model"]["predicted_us"].get<double>(), 0.0);
    EXPECT_FALSE(k["sites"].empty());
#if FOVEA_HAVE_CUDA
    // The nvcc build's ptxas table has every kernel, anonymous-namespace templates included (canonical names,
    // core/emu/cost_model.h): registers and occupancy are known.
    EXPECT_TRUE(k["model"]["registers"].is_number() && k["model"]["registers"].get<int>() > 0) << k.dump();
#endif
  }
  EXPECT_EQ(flop, 2.0 * 2 * 4 * 8 * 8 * 3 * 3 * 3);  // 2 N K P Q C R S
#if FOVEA_HAVE_CUDA
  EXPECT_EQ(r.output.find("registers unknown"), std::string::npos) << r.output;
#endif
  std::ifstream csv(dir + "/p.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header.rfind("section,kernel,row,location,space,op,bytes_per_lane,requests", 0), 0u) << header;
  std::filesystem::remove_all(dir);
}

TEST(ProfileCli, TrainingStepCountsLaunchesAndHostSynchronisations) {
  const std::string dir = temp_dir("step");
  const auto r = run_fovea("profile train-step --model cifar_quick --batch 2 --gpu a100 --json " + dir + "/s.json");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("A100 SXM4 80GB"), std::string::npos) << r.output;
  const nlohmann::json j = read_json(dir + "/s.json");
  const auto& s = j["sections"][0];
  EXPECT_GT(s["launches"].get<int>(), 10) << "forward, backward and the update of five layers";
  EXPECT_GE(s["host_syncs"].get<int>(), 1) << "the loss is read back";
  EXPECT_GT(j["predicted_us"].get<double>(), 0.0);
  std::filesystem::remove_all(dir);
}

TEST(ProfileCli, ErrorsNameTheProblem) {
  auto r = run_fovea("profile conv2d --device cpu");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--device must be emu"), std::string::npos) << r.output;
  r = run_fovea("profile conv2d --gpu v100");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown GPU 'v100' (known: a100, h100)"), std::string::npos) << r.output;
  r = run_fovea("profile conv2d --x 2,3,x,8");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--x must be positive integers"), std::string::npos) << r.output;
  r = run_fovea("profile matmul");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown op 'matmul'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace fovea
