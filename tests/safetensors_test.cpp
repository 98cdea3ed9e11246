// core/safetensors.h: round trips of every dtype, the layout rules, and one test per malformed file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/io.h"
#include "core/safetensors.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

using test::error_of;

template <typename T>
Tensor ramp(const Shape& s, T start) {
  std::vector<T> v(size_t(s.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = T(start + T(i * 7 % 13) - T(3));
  return Tensor::from_vector(v, s);
}

std::map<std::string, Tensor> sample_tensors() {
  return {{"conv1.weight", ramp<float>({4, 3, 3, 3}, 0.25f)}, {"conv1.bias", ramp<float>({4}, -1.5f)},
          {"step", ramp<int64_t>({}, int64_t(1) << 40)},      {"counts", ramp<int32_t>({2, 5}, -100)},
          {"mask", ramp<uint8_t>({3, 1, 7}, uint8_t(10))},    {"empty", Tensor::empty({0, 3}, DType::float32)}};
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

// A file from a header (as JSON text) and data bytes.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = char((uint64_t(header.size()) >> (8 * i)) & 0xFF);
  return out + header + data;
}

TEST(Safetensors, RoundTripEveryDtypeWithMetadata) {
  const auto tensors = sample_tensors();
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"fovea", "epoch 3"}};
  const std::string bytes = serialize_safetensors(tensors, meta);
  const Safetensors back = parse_safetensors(bytes, "mem");
  EXPECT_EQ(back.metadata, meta);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(back.tensors.count(name)) << name;
    EXPECT_TRUE(same_bytes(back.tensors.at(name), t)) << name;
    EXPECT_EQ(back.tensors.at(name).device(), kCPU);
  }
  // Serialising what was read gives the same bytes (a canonical layout).
  EXPECT_EQ(serialize_safetensors(back.tensors, back.metadata), bytes);
}

TEST(Safetensors, LayoutIsAlignedAndContiguous) {
  const std::string bytes = serialize_safetensors(sample_tensors());
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_FALSE(header.contains("__metadata__"));  // none given, none written
  uint64_t total = 0;
  for (const auto& [name, e] : header.items()) {
    const uint64_t b = e["data_offsets"][0], end = e["data_offsets"][1];
    const std::string dt = e["dtype"];
    const uint64_t size = dt == "I64" ? 8 : (dt == "U8" ? 1 : 4);
    EXPECT_EQ((8 + n + b) % size, 0u) << name << " is not aligned to its element size";
    total += end - b;
  }
  EXPECT_EQ(8 + n + total, bytes.size());
}

TEST(Safetensors, WritesAtomicallyAndReadsFiles) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("fovea_st_" + std::to_string(::getpid()) + ".safetensors")).string();
  write_safetensors(path, {{"w", ramp<float>({2, 2}, 1.0f)}}, {{"k", "v"}});
  const Safetensors s = read_safetensors(path);
  EXPECT_TRUE(same_bytes(s.tensors.at("w"), ramp<float>({2, 2}, 1.0f)));
  EXPECT_EQ(s.metadata.at("k"), "v");
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path()))
    EXPECT_EQ(e.path().string().find(path + ".tmp"), std::string::npos) << "temporary file left behind";
  std::filesystem::remove(path);
  EXPECT_NE(error_of([&] { read_safetensors(path); }).find(path), std::string::npos);
}

TEST(Safetensors, RefusesWhatItCannotWrite) {
  EXPECT_NE(error_of([] {
              serialize_safetensors({{"", ramp<float>({1}, 0.f)}});
            }).find("not allowed"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              serialize_safetensors({{"__metadata__", ramp<float>({1}, 0.f)}});
            }).find("not allowed"),
            std::string::npos);
  EXPECT_NE(error_of([] { serialize_safetensors({{"x", Tensor()}}); }).find("undefined"), std::string::npos);
}

struct BadCase {
  const char* what;
  std::string bytes;
  const char* expect;  // a piece of the message
};

TEST(Safetensors, MalformedFilesNameTheFileAndTheProblem) {
  const std::string d8(8, '\x01');
  const std::vector<BadCase> cases = {
      {"short", std::string(5, '\0'), "shorter than the 8-byte header length"},
      {"header past end", make_file("{}", "").substr(0, 9), "truncated: header length 2"},
      {"huge header length", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "larger than the limit"},
      {"not json start", make_file("[1]", ""), "does not start with '{'"},
      {"bad json", make_file("{\"a\":", ""), "not valid JSON"},
      {"entry not object", make_file(R"({"a": 3})", ""), "entry is not an object"},
      {"unknown dtype", make_file(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", d8),
       "dtype \"F64\" is not supported"},
      {"missing shape", make_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", d8), "\"shape\""},
      {"negative dim", make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8),
       "not a non-negative integer"},
      {"float offset", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.5]}})", d8),
       "not a non-negative integer"},
      {"three offsets", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", d8),
       "array of two numbers"},
      {"product mismatch", make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8),
       "needs 12 bytes but data_offsets [0, 8] hold 8"},
      {"overflowing shape",
       make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", d8),
       "needs too many bytes"},
      {"too many dims", make_file(R"({"a":{"dtype":"U8","shape":[1,1,1,1,1,8],"data_offsets":[0,8]}})", d8),
       "6 dimensions"},
      {"past the end", make_file(R"({"a":{"dtype":"U8","shape":[9],"data_offsets":[0,9]}})", d8),
       "run past the end of the data"},
      {"end before begin", make_file(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[5,4]}})", d8),
       "end before begin"},
      {"hole", make_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", d8), "leave a hole"},
      {"overlap",
       make_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"U8","shape":[6],"data_offsets":[2,8]}})",
                 d8),
       "overlap the previous tensor"},
      {"trailing bytes", make_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", d8),
       "4 bytes after the last tensor"},
      {"metadata not map", make_file(R"({"__metadata__":[1]})", ""), "\"__metadata__\" is not an object"},
      {"metadata value", make_file(R"({"__metadata__":{"k":1}})", ""), "value of 'k' is not a string"},
  };
  for (const auto& c : cases) {
    const std::string msg = error_of([&] { parse_safetensors(c.bytes, "model.safetensors"); });
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.what << ": " << msg;
  }
}

TEST(Safetensors, AcceptsWhatTheReferenceWriterProduces) {
  // Padding spaces after the JSON, keys in any order, unknown extra fields: all legal.
  const std::string f = make_file(R"({"b":{"dtype":"I32","shape":[1],"data_offsets":[4,8],"x":1},)"
                                  R"("a":{"shape":[1],"dtype":"F32","data_offsets":[0,4]}}    )",
                                  std::string("\x00\x00\x80\x3f\x07\x00\x00\x00", 8));
  const Safetensors s = parse_safetensors(f, "ok");
  EXPECT_EQ(s.tensors.at("a").to_vector<float>()[0], 1.0f);
  EXPECT_EQ(s.tensors.at("b").to_vector<int32_t>()[0], 7);
}

// Independent references: a half or bfloat16 value from its fields by ldexp, NaN as NaN with its sign.
float half_reference(uint16_t h) {
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (e == 31) return m ? std::copysign(NAN, sign) : sign * INFINITY;
  return sign * (e == 0 ? std::ldexp(float(m), -24) : std::ldexp(float(1024 + m), e - 25));
}
float bfloat16_reference(uint16_t h) {
  const int e = (h >> 7) & 0xFF, m = h & 0x7F;
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (e == 255) return m ? std::copysign(NAN, sign) : sign * INFINITY;
  return sign * (e == 0 ? std::ldexp(float(m), -133) : std::ldexp(float(128 + m), e - 134));
}

TEST(Safetensors, Float16AndBfloat16ReadAsFloat32ExactlyForEveryBitPattern) {
  std::string all(65536 * 2, '\0');
  for (uint32_t i = 0; i < 65536; ++i) {
    all[2 * i] = char(i & 0xFF);
    all[2 * i + 1] = char(i >> 8);
  }
  const std::string f32("\x00\x00\x80\x3f\x00\x00\x20\xc1", 8);  // 1.0, -10.0
  const std::string i64("\x05\x00\x00\x00\x00\x00\x00\x80", 8);
  const std::string file = make_file(R"({"h":{"dtype":"F16","shape":[65536],"data_offsets":[0,131072]},)"
                                     R"("b":{"dtype":"BF16","shape":[256,256],"data_offsets":[131072,262144]},)"
                                     R"("f":{"dtype":"F32","shape":[2],"data_offsets":[262144,262152]},)"
                                     R"("i":{"dtype":"I64","shape":[],"data_offsets":[262152,262160]}})",
                                     all + all + f32 + i64);
  const Safetensors raw = parse_safetensors(file, "mem");
  EXPECT_EQ(raw.tensors.at("h").dtype(), DType::float16);  // the plain reader keeps the stored dtype
  const Safetensors s = parse_safetensors_as_float32(file, "mem");
  const Tensor& h = s.tensors.at("h");
  const Tensor& b = s.tensors.at("b");
  ASSERT_EQ(h.dtype(), DType::float32);
  ASSERT_EQ(b.dtype(), DType::float32);
  EXPECT_EQ(b.shape(), Shape({256, 256}));
  const std::vector<float> hv = h.to_vector<float>(), bv = b.to_vector<float>();
  int mismatches = 0;
  for (uint32_t i = 0; i < 65536; ++i) {
    for (auto [got, want] : {std::pair{hv[i], half_reference(uint16_t(i))}, {bv[i], bfloat16_reference(uint16_t(i))}}) {
      const bool ok = std::isnan(want) ? std::isnan(got) && std::signbit(got) == std::signbit(want)
                                       : got == want && std::signbit(got) == std::signbit(want);
      if (!ok && ++mismatches < 10) ADD_FAILURE() << "bit pattern 0x" << std::hex << i << ": " << got << " vs " << want;
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(s.tensors.at("f").to_vector<float>(), std::vector<float>({1.0f, -10.0f}));
  EXPECT_EQ(s.tensors.at("i").dtype(), DType::int64);
  EXPECT_EQ(s.tensors.at("i").to_vector<int64_t>()[0], int64_t(0x8000000000000005ull));
}

}  // namespace
}  // namespace fovea
