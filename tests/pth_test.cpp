// core/pth.h and core/zip_reader.h: PyTorch files written by torch.save (torchvision models, every
// dtype, views and shared storages, legacy format, protocol 4, deflated entries, checkpoints)
// compared bit for bit with what torch itself writes out as .npy; hand-built files for the zip64
// directory and for every kind of hostile or broken input (foreign globals, forbidden opcodes,
// sizes out of range, truncation, bad CRC), each an error naming the file.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/io.h"
#include "core/npy.h"
#include "core/pth.h"
#include "core/safetensors.h"
#include "core/zip_reader.h"
#include "tests/pth_builder.h"
#include "tests/python_util.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::make_pth;
using test::PickleWriter;
using test::throws_error;

// The files tests/pth_fixtures.py writes; `skip` says why there are none.
struct Fixtures {
  std::string dir, skip;
  nlohmann::json manifest;  // null when the generator failed (a failure, not a skip)
};

const Fixtures& fixtures() {
  static const Fixtures f = [] {
    Fixtures f;
    std::string error;
    f.dir = test::python_fixtures("tests/pth_fixtures.py", {"scripts/torch_export.py"}, "torch, torchvision, numpy",
                                  &f.skip, &error);
    if (f.dir.empty()) {
      if (f.skip.empty()) ADD_FAILURE() << error;
      return f;
    }
    std::ifstream in(f.dir + "/manifest.json");
    f.manifest = nlohmann::json::parse(in);
    return f;
  }();
  return f;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

TEST(PthTorch, EveryTensorMatchesTorchBitForBit) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object()) << "the fixture generator failed";
  size_t compared = 0;
  for (const auto& [case_name, c] : f.manifest["cases"].items()) {
    SCOPED_TRACE(case_name);
    const std::string path = f.dir + "/" + c["file"].get<std::string>();
    const TorchWeights w = read_pth(path);
    EXPECT_EQ(w.format, c["format"].get<std::string>());
    EXPECT_EQ(w.state_dict_key, c["key"].get<std::string>());
    std::set<std::string> expected_names;
    for (const auto& [name, t] : c["tensors"].items()) {
      expected_names.insert(name);
      ASSERT_TRUE(w.tensors.count(name)) << name << " is missing";
      const Tensor want = read_npy(f.dir + "/" + t["npy"].get<std::string>());
      const Tensor& got = w.tensors.at(name);
      EXPECT_TRUE(same_bytes(got, want)) << name << ": got " << got.str() << ", torch wrote " << want.str();
      EXPECT_EQ(w.torch_dtypes.at(name), t["dtype"].get<std::string>()) << name;
      ++compared;
    }
    std::set<std::string> got_names;
    for (const auto& [name, t] : w.tensors) got_names.insert(name);
    EXPECT_EQ(got_names, expected_names);
  }
  EXPECT_GT(compared, 400u);  // resnet18 and mobilenet_v2 alone have over 400 tensors
}

TEST(PthTorch, TorchvisionStateDictKeepsInt64AndFloat32) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object());
  const TorchWeights w = read_pth(f.dir + "/resnet18.pth");
  EXPECT_EQ(w.tensors.size(), 122u);  // 62 parameters and 60 batch norm buffers
  EXPECT_EQ(w.tensors.at("conv1.weight").shape(), Shape({64, 3, 7, 7}));
  EXPECT_EQ(w.tensors.at("fc.weight").shape(), Shape({1000, 512}));
  const Tensor& nbt = w.tensors.at("bn1.num_batches_tracked");
  ASSERT_EQ(nbt.dtype(), DType::int64);
  EXPECT_EQ(nbt.to_vector<int64_t>(), std::vector<int64_t>({1}));  // one training-mode forward pass
}

TEST(PthTorch, RefusesForeignGlobalsThatTorchSaveWrote) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object());
  const std::string marker = f.manifest["marker"].get<std::string>();
  fs::remove(marker);
  for (const auto& [name, h] : f.manifest["hostile"].items()) {
    const std::string path = f.dir + "/" + h["file"].get<std::string>();
    EXPECT_TRUE(
        throws_error([&] { read_pth(path); }, {path, "global '" + h["global"].get<std::string>() + "'",
                                               h["opcode"].get<std::string>(), "is not allowed", "at byte offset"}))
        << name;
  }
  EXPECT_FALSE(fs::exists(marker)) << "a command in a hostile file ran";
}

// ------------------------------------------------------------------ scripts/torch_export.py
// (run by tests/pth_fixtures.py as a user runs it; its files and messages are checked here)

const nlohmann::json& export_run(const Fixtures& f, const std::string& name) {
  return f.manifest["exports"][name];
}

// The script's safetensors files must pass fovea's strict reader and hold exactly what torch saved.
TEST(TorchExport, PthAndTorchvisionModelsBecomeSafetensorsWithTheSameValues) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object());
  for (const char* run : {"mix", "mobilenet_pth", "mobilenet_model"})
    ASSERT_EQ(export_run(f, run)["returncode"], 0) << export_run(f, run).dump(1);
  // Every dtype fovea reads, against the .npy torch wrote.
  const Safetensors mix = read_safetensors_as_float32(f.dir + "/mix.safetensors");
  const auto& expect = f.manifest["cases"]["export_mix"]["tensors"];
  ASSERT_EQ(mix.tensors.size(), expect.size());
  for (const auto& [name, t] : expect.items())
    EXPECT_TRUE(same_bytes(mix.tensors.at(name), read_npy(f.dir + "/" + t["npy"].get<std::string>()))) << name;
  EXPECT_EQ(mix.metadata.at("format"), "pt");
  // A torchvision model, from a state_dict file and from --model with those weights: both equal the
  // .pth as fovea reads it (itself checked against torch above).
  const TorchWeights pth = read_pth(f.dir + "/mobilenet_v2.pth");
  for (const char* run : {"mobilenet_pth", "mobilenet_model"}) {
    const Safetensors st = read_safetensors_as_float32(f.dir + "/" + export_run(f, run)["file"].get<std::string>());
    ASSERT_EQ(st.tensors.size(), pth.tensors.size()) << run;
    for (const auto& [name, t] : pth.tensors) {
      ASSERT_TRUE(st.tensors.count(name)) << run << ": " << name;
      EXPECT_TRUE(same_bytes(st.tensors.at(name), t)) << run << ": " << name;
    }
  }
}

TEST(TorchExport, CastsFloatsAndRefusesWhatItCannotRead) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object());
  ASSERT_EQ(export_run(f, "bf16")["returncode"], 0) << export_run(f, "bf16").dump(1);
  const Safetensors raw = read_safetensors(f.dir + "/bf16.safetensors");
  EXPECT_EQ(raw.tensors.at("features.0.0.weight").dtype(), DType::bfloat16);
  EXPECT_EQ(raw.tensors.at("features.0.1.num_batches_tracked").dtype(), DType::int64);  // integers are not cast
  EXPECT_NE(raw.metadata.at("source").find("random weights (seed 3)"), std::string::npos);
  const nlohmann::json& evil = export_run(f, "evil");
  EXPECT_NE(evil["returncode"], 0);
  EXPECT_NE(evil["output"].get<std::string>().find("evil_system_p2.pth"), std::string::npos) << evil.dump(1);
  EXPECT_FALSE(fs::exists(f.dir + "/evil.safetensors"));
  EXPECT_FALSE(fs::exists(f.manifest["marker"].get<std::string>())) << "torch.load(weights_only=True) ran a command";
  const nlohmann::json& mismatch = export_run(f, "mismatch");
  EXPECT_NE(mismatch["returncode"], 0);
  EXPECT_NE(mismatch["output"].get<std::string>().find("does not fit torchvision.models.resnet34"), std::string::npos)
      << mismatch.dump(1);
  EXPECT_FALSE(fs::exists(f.dir + "/mismatch.safetensors"));
}

// ------------------------------------------------------------------ hand-built files (no Python needed)

TEST(PthHandmade, ReadsAMinimalStateDict) {
  for (bool zip64 : {false, true}) {
    const TorchWeights w = parse_pth(make_pth(test::small_state_dict_pickle(), zip64), "small.pth");
    ASSERT_EQ(w.tensors.size(), 2u) << "zip64 " << zip64;
    EXPECT_EQ(w.format, "zip");
    EXPECT_EQ(w.tensors.at("w").shape(), Shape({2, 3}));
    EXPECT_EQ(w.tensors.at("w").to_vector<float>(), std::vector<float>({0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f}));
    EXPECT_EQ(w.tensors.at("n").dtype(), DType::int64);
    EXPECT_EQ(w.tensors.at("n").to_vector<int64_t>(), std::vector<int64_t>({42}));
    EXPECT_EQ(w.torch_dtypes.at("w"), "float32");
  }
}

TEST(PthHandmade, ReadsAStridedViewOfAStorage) {
  PickleWriter p;
  p.proto(2).global("collections", "OrderedDict").empty_tuple().reduce().mark();
  p.str("t").tensor("FloatStorage", "0", 6, 1, {2, 2}, {1, 2});  // elements 1, 2 / 3, 4 read column-major
  p.setitems().stop();
  const TorchWeights w = parse_pth(make_pth(p.b), "view.pth");
  EXPECT_EQ(w.tensors.at("t").to_vector<float>(), std::vector<float>({1.5f, 3.5f, 2.5f, 4.5f}));
}

// The legacy format as PyTorch 0.3 wrote it: five pickles (magic number, protocol 1001, system info,
// the data, the storage keys) then each storage as an int64 count and its bytes; tensors through
// torch._utils._rebuild_tensor (no requires_grad), a storage saved from a GPU (torch.cuda.FloatStorage)
// and a storage view (key, offset, size) of a root.
TEST(PthHandmade, ReadsTheLegacyFormatWithStorageViews) {
  std::string file =
      PickleWriter().proto(2).raw(std::string("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 12)).stop().b;
  file += PickleWriter().proto(2).integer(1001).stop().b;
  file += PickleWriter().proto(2).empty_dict().str("little_endian").boolean(true).op('s').stop().b;
  PickleWriter p;
  p.proto(2).empty_dict().mark().str("view").global("torch._utils", "_rebuild_tensor").mark();
  p.mark().str("storage").global("torch.cuda", "FloatStorage").str("123").str("cuda:0").integer(6);
  p.str("456").integer(2).integer(3).op(0x87).tuple().op('Q');  // view: elements [2, 5) of root "123"
  p.integer(1).ints({2}).ints({1}).tuple().reduce();            // elements 1 and 2 of the view
  p.str("whole").global("torch._utils", "_rebuild_tensor").mark();
  p.mark().str("storage").global("torch", "FloatStorage").str("123").str("cpu").integer(6).op('N').tuple().op('Q');
  p.integer(0).ints({3, 2}).ints({1, 3}).tuple().reduce();  // a transposed view of the root
  file += p.setitems().stop().b;
  file += PickleWriter().proto(2).op(']').mark().str("123").op('e').stop().b;
  file += test::le_bytes(6, 8);
  for (int i = 0; i < 6; ++i) {
    const float v = float(i) + 0.5f;
    file.append(reinterpret_cast<const char*>(&v), 4);
  }
  const TorchWeights w = parse_pth(file, "old.pth");
  EXPECT_EQ(w.format, "legacy");
  EXPECT_EQ(w.tensors.at("view").to_vector<float>(), std::vector<float>({3.5f, 4.5f}));
  EXPECT_EQ(w.tensors.at("whole").shape(), Shape({3, 2}));
  EXPECT_EQ(w.tensors.at("whole").to_vector<float>(), std::vector<float>({0.5f, 3.5f, 1.5f, 4.5f, 2.5f, 5.5f}));
  // The same file cut short, and with a storage count that disagrees with the pickle.
  EXPECT_TRUE(throws_error([&] { parse_pth(file.substr(0, file.size() - 3), "old.pth"); },
                           {"old.pth", "legacy format", "truncated: storage '123' needs 24 bytes"}));
  std::string wrong = file;
  wrong[wrong.size() - 24 - 8] = 7;
  EXPECT_TRUE(throws_error([&] { parse_pth(wrong, "old.pth"); }, {"old.pth", "has 7 elements, the pickle says 6"}));
}

struct HostileCase {
  const char* what;
  std::string pickle;
  std::vector<std::string> expect;  // pieces of the message, besides the file name
};

std::string state_dict_with(const std::function<void(PickleWriter&)>& entries) {
  PickleWriter p;
  p.proto(2).global("collections", "OrderedDict").empty_tuple().reduce().mark();
  entries(p);
  return p.setitems().stop().b;
}

TEST(PthHandmade, HostilePicklesAreRefusedWithFileOpcodeAndOffset) {
  using namespace std::string_literals;
  const std::vector<HostileCase> cases = {
      {"GLOBAL os.system",
       "\x80\x02"s + "cos\nsystem\nX\x02\x00\x00\x00lsR."s,
       {"global 'os.system'", "(GLOBAL)", "not allowed", "byte offset 2)"}},
      {"STACK_GLOBAL os.system",
       "\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x8c\x02ls\x85R."s,
       {"global 'os.system'", "(STACK_GLOBAL)", "byte offset 16)"}},
      {"GLOBAL builtins.eval in a dict",
       state_dict_with([](PickleWriter& p) { p.str("x").global("builtins", "eval").str("1").raw("\x85").reduce(); }),
       {"global 'builtins.eval'", "(GLOBAL)"}},
      {"REDUCE on an allowlisted non-callable",
       state_dict_with([](PickleWriter& p) { p.str("x").global("torch", "FloatStorage").empty_tuple().reduce(); }),
       {"REDUCE of 'torch.FloatStorage' is not allowed"}},
      {"REDUCE on a string",
       state_dict_with([](PickleWriter& p) { p.str("x").str("os.system").empty_tuple().reduce(); }),
       {"REDUCE calls a str"}},
      {"INST opcode", "\x80\x02(ios\nsystem\n."s, {"opcode 0x69 'i' (INST) is not allowed", "byte offset 3)"}},
      {"OBJ opcode", "\x80\x02(o."s, {"(OBJ) is not allowed", "byte offset 3)"}},
      {"NEWOBJ opcode", "\x80\x02\x81."s, {"opcode 0x81 (NEWOBJ) is not allowed", "byte offset 2)"}},
      {"EXT1 opcode", "\x80\x02\x82\x01."s, {"(EXT1) is not allowed"}},
      {"BUILD on a tensor",
       state_dict_with(
           [](PickleWriter& p) { p.str("w").tensor("FloatStorage", "0", 6, 0, {6}, {1}).empty_dict().op('b'); }),
       {"BUILD on a tensor"}},
      {"protocol 1", "\x80\x01N."s, {"pickle protocol 1 is not supported"}},
      {"no STOP", "\x80\x02N"s, {"ends without a STOP opcode"}},
      {"string past the end", "\x80\x02X\xff\x00\x00\x00"s + "ab", {"needs 255 bytes", "truncated"}},
      {"memo never stored", "\x80\x02h\x05."s, {"memo entry 5 was never stored"}},
      {"stack underflow", "\x80\x02R."s, {"stack underflow"}},
      {"not a dict", "\x80\x02K\x07."s, {"the pickled object is a int, not a state_dict"}},
      {"a non-tensor entry",
       state_dict_with([](PickleWriter& p) { p.str("a").integer(1); }),
       {"entry 'a' is a int, not a tensor", "no 'state_dict' or 'model' entry"}},
      {"a dimension of 2^50",
       state_dict_with([](PickleWriter& p) { p.str("w").tensor("FloatStorage", "0", 6, 0, {int64_t(1) << 50}, {1}); }),
       {"a tensor dimension is 1125899906842624, outside [0, 2^40]"}},
      {"a negative stride",
       state_dict_with([](PickleWriter& p) { p.str("w").tensor("FloatStorage", "0", 6, 0, {2}, {-1}); }),
       {"a tensor stride is -1"}},
      {"six dimensions",
       state_dict_with([](PickleWriter& p) {
         p.str("w").tensor("FloatStorage", "0", 6, 0, {1, 1, 1, 1, 1, 6}, {6, 6, 6, 6, 6, 1});
       }),
       {"a tensor of 6 dimensions"}},
      {"a view past its storage",
       state_dict_with([](PickleWriter& p) { p.str("w").tensor("FloatStorage", "0", 6, 0, {7}, {1}); }),
       {"tensor 'w'", "reaches element 6 of storage '0', which has 6"}},
      {"an offset past its storage",
       state_dict_with([](PickleWriter& p) {
         p.str("w").tensor("FloatStorage", "0", 6, 5, {2, 1}, {1, 1});
       }),
       {"reaches element 6"}},
      {"a huge stride-0 expansion",
       state_dict_with([](PickleWriter& p) {
         p.str("w").tensor("FloatStorage", "0", 6, 0, {int64_t(1) << 30, 512}, {0, 0});
       }),
       {"tensor 'w'", "549755813888 elements exceed what the file's storages can account for"}},
      {"a storage without its entry",
       state_dict_with([](PickleWriter& p) { p.str("w").tensor("FloatStorage", "7", 6, 0, {6}, {1}); }),
       {"storage '7' has no entry 'archive/data/7'"}},
      {"a storage larger than its entry",
       state_dict_with([](PickleWriter& p) { p.str("w").tensor("FloatStorage", "0", 100, 0, {6}, {1}); }),
       {"entry 'archive/data/0' holds 24 bytes", "100 elements of float32 (400 bytes)"}},
      {"one storage as two types",
       state_dict_with([](PickleWriter& p) {
         p.str("a").tensor("FloatStorage", "0", 6, 0, {6}, {1});
         p.str("b").tensor("IntStorage", "0", 6, 0, {6}, {1});
       }),
       {"storage '0' appears as FloatStorage of 6 elements and as IntStorage of 6"}},
      {"backward hooks",
       state_dict_with([](PickleWriter& p) {
         p.str("w").global("torch._utils", "_rebuild_tensor_v2").mark();
         p.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(6).tuple().op('Q');
         p.integer(0).ints({6}).ints({1}).boolean(false).empty_dict().str("k").integer(1).op('s').tuple().reduce();
       }),
       {"backward hooks (they would be code) is not allowed"}},
      {"a persistent id that is not a storage",
       state_dict_with([](PickleWriter& p) {
         p.str("w").mark().str("module").str("x").str("y").str("z").integer(1).tuple().op('Q');
       }),
       {"persistent id of kind 'module'"}},
  };
  for (const HostileCase& c : cases) {
    std::vector<std::string> parts = c.expect;
    parts.push_back("hostile.pth");
    EXPECT_TRUE(throws_error([&] { parse_pth(make_pth(c.pickle), "hostile.pth"); }, parts)) << c.what;
  }
}

// Patches the first central directory record of a make_zip() archive.
void patch_central(std::string* zip, size_t field_offset, uint64_t value, int bytes) {
  const size_t p = zip->find("PK\x01\x02");
  ASSERT_NE(p, std::string::npos);
  zip->replace(p + field_offset, size_t(bytes), test::le_bytes(value, bytes));
}

TEST(PthHandmade, BrokenContainersNameTheFileAndTheProblem) {
  const std::string good = make_pth(test::small_state_dict_pickle());
  ASSERT_NO_THROW(parse_pth(good, "good.pth"));
  EXPECT_TRUE(throws_error([] { parse_pth("hello, world", "text.pth"); },
                           {"text.pth", "neither a zip archive", "nor the legacy torch.save format"}));
  for (size_t keep : {size_t(2), size_t(40), good.size() / 2, good.size() - 30, good.size() - 1}) {
    const std::string cut = good.substr(0, keep);
    const std::string msg = error_of([&] { parse_pth(cut, "cut.pth"); });
    EXPECT_NE(msg.find("cut.pth"), std::string::npos) << keep << ": " << msg;
    EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                msg.find("no end-of-central-directory") != std::string::npos ||
                msg.find("neither a zip") != std::string::npos)
        << keep << ": " << msg;
  }
  std::string bad_crc = good;
  const size_t data0 = bad_crc.find("archive/data/0") + std::strlen("archive/data/0");
  bad_crc[data0 + 3] ^= 0x40;  // a byte of the first float of storage "0"
  EXPECT_TRUE(throws_error([&] { parse_pth(bad_crc, "crc.pth"); },
                           {"crc.pth", "entry 'archive/data/0'", "CRC-32 mismatch", "corrupt"}));
  std::string bzip = good;
  patch_central(&bzip, 10, 12, 2);
  EXPECT_TRUE(throws_error([&] { parse_pth(bzip, "bzip.pth"); }, {"bzip.pth", "compression method 12"}));
  std::string encrypted = good;
  patch_central(&encrypted, 8, 1, 2);
  EXPECT_TRUE(throws_error([&] { parse_pth(encrypted, "enc.pth"); }, {"enc.pth", "encrypted"}));
  std::string bomb = good;  // data.pkl claims to inflate to 4 GB from a few hundred bytes
  patch_central(&bomb, 10, 8, 2);
  patch_central(&bomb, 24, 0xFFFFFFF0u, 4);
  EXPECT_TRUE(throws_error([&] { parse_pth(bomb, "bomb.pth"); }, {"bomb.pth", "refused", "deflate ratio"}));
  std::string far = good;
  patch_central(&far, 42, 1u << 30, 4);
  EXPECT_TRUE(throws_error([&] { parse_pth(far, "far.pth"); }, {"far.pth", "no local header at byte offset"}));
  const std::string no_pickle = test::make_zip({{"archive/version", "3\n"}});
  EXPECT_TRUE(throws_error([&] { parse_pth(no_pickle, "nopkl.pth"); }, {"nopkl.pth", "without a '<name>/data.pkl'"}));
  const std::string two = test::make_zip({{"a/data.pkl", "\x80\x02}."}, {"b/data.pkl", "\x80\x02}."}});
  EXPECT_TRUE(throws_error([&] { parse_pth(two, "two.pth"); }, {"two.pth", "two pickles"}));
  const std::string dup = test::make_zip({{"a/data.pkl", "\x80\x02}."}, {"a/data.pkl", "\x80\x02}."}});
  EXPECT_TRUE(throws_error([&] { parse_pth(dup, "dup.pth"); }, {"dup.pth", "appears twice"}));
  // Found by fuzz/fuzz_pth: a zip64 locator in a file shorter than a zip64 end record made the
  // bounds check wrap around and read past the buffer.
  const std::string short_zip64(
      "PK\x03\x04i\x00\x00td\x00\x00PK\x06\x07\x00\x00\x00\x00\xaf\x0b\x00\x00\x00\x00\x00\x00"
      "\x01\x00\x00\x00PK\x05\x06\x00\x00\x00\x00\x09\x00\x09\x00\x9d\x02\x00\x00\x12\x09\x00\x00\x00\x00",
      53);
  EXPECT_TRUE(throws_error([&] { parse_pth(short_zip64, "z64.pth"); }, {"z64.pth", "no zip64 end record"}));
  const std::string big_endian = test::make_zip({{"a/data.pkl", "\x80\x02}."}, {"a/byteorder", "big"}});
  EXPECT_TRUE(throws_error([&] { parse_pth(big_endian, "be.pth"); }, {"be.pth", "byte order 'big'"}));
}

// Every prefix and every single-byte corruption of a small file: a result or a fovea::Error, never
// a crash (the fuzzer, fuzz/fuzz_pth.cpp, goes much further).
TEST(PthHandmade, EveryTruncationAndByteFlipIsHandled) {
  const std::string good = make_pth(test::small_state_dict_pickle());
  size_t errors = 0;
  for (size_t n = 0; n < good.size(); ++n) {
    const std::string cut = good.substr(0, n);
    errors += error_of([&] { parse_pth(cut, "cut.pth"); }) != "(no error)";
    std::string flipped = good;
    flipped[n] = char(flipped[n] ^ 0xFF);
    error_of([&] { parse_pth(flipped, "flip.pth"); });
  }
  EXPECT_EQ(errors, good.size());  // no prefix is a complete file
}

TEST(ZipReader, ListsEntriesAndReadsThem) {
  const std::string zip = test::make_zip({{"a.txt", "hello"}, {"dir/b.bin", std::string("\0\1\2", 3)}, {"empty", ""}});
  ASSERT_TRUE(looks_like_zip(zip));
  const ZipReader r(zip, "t.zip");
  ASSERT_EQ(r.entries().size(), 3u);
  std::string scratch;
  EXPECT_EQ(r.read(*r.find("a.txt"), &scratch), "hello");
  EXPECT_EQ(r.read(*r.find("dir/b.bin"), &scratch), std::string("\0\1\2", 3));
  EXPECT_EQ(r.read(*r.find("empty"), &scratch), "");
  EXPECT_EQ(r.find("missing"), nullptr);
  const ZipReader empty(test::make_zip({}), "empty.zip");
  EXPECT_TRUE(empty.entries().empty());
}

}  // namespace
}  // namespace fovea
