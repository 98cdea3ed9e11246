#include "core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/float16.h"
#include "core/io.h"

namespace fovea {
namespace {

// The reference implementation refuses headers above 100 MB; so do we (and a fuzzer cannot make us
// allocate gigabytes for a header).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const char* st_dtype_name(DType t) {
  switch (t) {
    case DType::float32: return "F32";
    case DType::int32: return "I32";
    case DType::int64: return "I64";
    case DType::uint8: return "U8";
    case DType::float16: return "F16";
    case DType::bfloat16: return "BF16";
    case DType::float64: FOVEA_FAIL("safetensors: fovea does not write float64 tensors");  // metric sums only
  }
  return "?";
}

bool st_dtype_from_name(const std::string& s, DType* out) {
  for (DType t : {DType::float32, DType::int32, DType::int64, DType::uint8, DType::float16, DType::bfloat16}) {
    if (s == st_dtype_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

}  // namespace

std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, const Tensor*>> order;
  for (const auto& [name, t] : tensors) {
    FOVEA_CHECK(!name.empty() && name != "__metadata__", "write_safetensors: tensor name '", name,
                "' is not allowed (empty or reserved)");
    FOVEA_CHECK(t.defined(), "write_safetensors: tensor '", name, "' is undefined");
    FOVEA_CHECK(t.device().is_host_memory(), "write_safetensors: tensor '", name, "' ", t.str(),
                " is on a GPU; copy it with .to(kCPU) first");
    order.emplace_back(name, &t);
  }
  // Largest elements first so that every tensor's offset is a multiple of its element size.
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return dtype_size(a.second->dtype()) > dtype_size(b.second->dtype());
  });
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : order) {
    nlohmann::json e;
    e["dtype"] = st_dtype_name(t->dtype());
    e["shape"] = t->shape().vec();
    e["data_offsets"] = {offset, offset + t->nbytes()};
    header[name] = e;
    offset += t->nbytes();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t(h.size()) >> (8 * i)) & 0xFF);
  out.reserve(8 + h.size() + offset);
  out += h;
  for (const auto& [name, t] : order) out.append(static_cast<const char*>(t->raw_data()), t->nbytes());
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

Safetensors parse_safetensors(const std::string& bytes, const std::string& name) {
  const auto where = [&] { return cat("safetensors file '", name, "': "); };
  FOVEA_CHECK(bytes.size() >= 8, where(), "truncated: ", bytes.size(), " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  FOVEA_CHECK(n <= kMaxHeaderBytes, where(), "header length ", n, " (bytes 0-7) is larger than the limit of ",
              kMaxHeaderBytes, " bytes: not a safetensors file or corrupt");
  FOVEA_CHECK(n <= bytes.size() - 8, where(), "truncated: header length ", n, " but the file has only ",
              bytes.size() - 8, " bytes after the length");
  FOVEA_CHECK(n >= 2 && bytes[8] == '{', where(), "the header at byte offset 8 does not start with '{' (not JSON)");
  const std::string_view text(bytes.data() + 8, n);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    FOVEA_FAIL(where(), "the header (byte offsets 8 to ", 8 + n, ") is not valid JSON: ", e.what());
  }
  FOVEA_CHECK(header.is_object(), where(), "the header is not a JSON object");

  const uint64_t data_start = 8 + n;
  const uint64_t data_size = bytes.size() - data_start;
  Safetensors out;
  std::vector<Entry> entries;
  for (const auto& item : header.items()) {
    const std::string key = item.key();  // not a structured binding: clang 14 cannot capture those
    const nlohmann::json& value = item.value();
    if (key == "__metadata__") {
      FOVEA_CHECK(value.is_object(), where(), "\"__metadata__\" is not an object");
      for (const auto& [mk, mv] : value.items()) {
        FOVEA_CHECK(mv.is_string(), where(), "\"__metadata__\" value of '", mk, "' is not a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    const auto bad = [&](const std::string& what) { FOVEA_FAIL(where(), "tensor '", key, "': ", what); };
    if (!value.is_object()) bad("entry is not an object");
    if (!value.contains("dtype") || !value["dtype"].is_string()) bad("missing or non-string \"dtype\"");
    if (!value.contains("shape") || !value["shape"].is_array()) bad("missing or non-array \"shape\"");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      bad("\"data_offsets\" is not an array of two numbers");
    Entry e;
    e.name = key;
    const std::string dt = value["dtype"].get<std::string>();
    if (!st_dtype_from_name(dt, &e.dtype))
      bad(cat("dtype \"", dt, "\" is not supported (F32, I32, I64, U8, F16, BF16)"));
    const auto& shape = value["shape"];
    if (shape.size() > size_t(Shape::kMaxDims))
      bad(cat(shape.size(), " dimensions, fovea supports at most ", Shape::kMaxDims));
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) bad(cat("shape entry ", d.dump(), " is not a non-negative integer"));
      const uint64_t v = d.get<uint64_t>();
      if (v > (uint64_t(1) << 48)) bad(cat("shape entry ", v, " is absurdly large"));
      e.shape.push_back(int64_t(v));
      overflow = overflow || __builtin_mul_overflow(numel, v, &numel);
    }
    for (int i = 0; i < 2; ++i)
      if (!value["data_offsets"][i].is_number_unsigned())
        bad("\"data_offsets\" holds a value that is not a non-negative integer");
    e.begin = value["data_offsets"][0].get<uint64_t>();
    e.end = value["data_offsets"][1].get<uint64_t>();
    if (e.end < e.begin) bad(cat("data_offsets [", e.begin, ", ", e.end, "] end before begin"));
    if (e.end > data_size)
      bad(cat("data_offsets [", e.begin, ", ", e.end, "] run past the end of the data (", data_size,
              " bytes from byte offset ", data_start, "): truncated file?"));
    uint64_t nbytes = 0;
    overflow = overflow || __builtin_mul_overflow(numel, uint64_t(dtype_size(e.dtype)), &nbytes);
    if (overflow || nbytes != e.end - e.begin)
      bad(cat("shape ", Shape(e.shape).str(), " of ", dt, " needs ", overflow ? "too many" : std::to_string(nbytes),
              " bytes but data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin));
    entries.push_back(std::move(e));
  }
  // The data must be covered exactly, without holes or overlaps (as the reference reader demands).
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t expect = 0;
  for (const Entry& e : entries) {
    FOVEA_CHECK(e.begin == expect, where(), "tensor '", e.name, "' data_offsets [", e.begin, ", ", e.end, "] ",
                e.begin < expect ? "overlap the previous tensor" : "leave a hole after the previous tensor",
                " (expected begin ", expect, ")");
    expect = e.end;
  }
  FOVEA_CHECK(expect == data_size, where(), data_size - expect, " bytes after the last tensor (byte offset ",
              data_start + expect, " of ", bytes.size(), ") are not described by the header");
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(Shape(e.shape), e.dtype, kCPU);
    if (e.end > e.begin) std::memcpy(t.raw_data(), bytes.data() + data_start + e.begin, e.end - e.begin);
    out.tensors[e.name] = t;
  }
  return out;
}

Safetensors read_safetensors(const std::string& path) {
  return parse_safetensors(read_file(path), path);
}

Safetensors parse_safetensors_as_float32(const std::string& bytes, const std::string& name) {
  Safetensors s = parse_safetensors(bytes, name);
  for (auto& [key, t] : s.tensors)
    if (t.dtype() == DType::float16 || t.dtype() == DType::bfloat16)
      t = to_float32(t, cat("tensor '", key, "' of '", name, "'"));
  return s;
}

Safetensors read_safetensors_as_float32(const std::string& path) {
  return parse_safetensors_as_float32(read_file(path), path);
}

}  // namespace fovea
