#include "core/npy.h"

#include <cctype>
#include <cstring>
#include <optional>
#include <string_view>

#include "core/io.h"
#include "core/parse.h"

namespace fovea {
namespace {

const char kMagic[] = "\x93NUMPY";

struct Header {
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
};

// The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
Header parse_header(const std::string& h, const std::string& name) {
  auto fail = [&](const std::string& what) { FOVEA_FAIL(".npy file '", name, "': ", what, " in header: ", h); };
  auto value_of = [&](const char* key) -> size_t {
    const std::string k1 = cat("'", key, "'"), k2 = cat("\"", key, "\"");
    size_t p = h.find(k1);
    if (p == std::string::npos) p = h.find(k2);
    if (p == std::string::npos) fail(cat("missing key '", key, "'"));
    p = h.find(':', p);
    if (p == std::string::npos) fail(cat("no value for '", key, "'"));
    ++p;
    while (p < h.size() && std::isspace(static_cast<unsigned char>(h[p]))) ++p;
    return p;
  };
  Header out;
  size_t p = value_of("descr");
  if (p >= h.size() || (h[p] != '\'' && h[p] != '"')) fail("'descr' is not a string");
  const size_t q = h.find(h[p], p + 1);
  if (q == std::string::npos) fail("unterminated 'descr'");
  out.descr = h.substr(p + 1, q - p - 1);
  p = value_of("fortran_order");
  if (h.compare(p, 4, "True") == 0)
    out.fortran = true;
  else if (h.compare(p, 5, "False") != 0)
    fail("'fortran_order' is neither True nor False");
  p = value_of("shape");
  if (p >= h.size() || h[p] != '(') fail("'shape' is not a tuple");
  const size_t e = h.find(')', p);
  if (e == std::string::npos) fail("unterminated 'shape'");
  for (std::string_view d : split(std::string_view(h).substr(p + 1, e - p - 1), ',')) {
    while (!d.empty() && std::isspace(static_cast<unsigned char>(d.front()))) d.remove_prefix(1);
    while (!d.empty() && std::isspace(static_cast<unsigned char>(d.back()))) d.remove_suffix(1);
    if (d.empty()) continue;  // "()" and the trailing comma of "(3,)"
    const std::optional<uint64_t> v = try_parse_uint(d);
    if (!v && d.find_first_not_of("0123456789") == std::string_view::npos) fail("a dimension is absurdly large");
    if (!v) fail("'shape' holds something that is not a size");
    if (*v > (uint64_t(1) << 40)) fail("a dimension is absurdly large");
    out.shape.push_back(int64_t(*v));
  }
  return out;
}

DType dtype_from_descr(const std::string& d, const std::string& name) {
  if (d == "<f4") return DType::float32;
  if (d == "<i4") return DType::int32;
  if (d == "<i8") return DType::int64;
  if (d == "|u1" || d == "<u1") return DType::uint8;
  FOVEA_FAIL(".npy file '", name, "': dtype '", d,
             "' is not supported (fovea reads little-endian float32 '<f4', int32 '<i4', int64 '<i8', uint8 '|u1')");
}

const char* descr_of(DType t) {
  switch (t) {
    case DType::float32: return "<f4";
    case DType::int32: return "<i4";
    case DType::int64: return "<i8";
    case DType::uint8: return "|u1";
    default: FOVEA_FAIL("write_npy: dtype ", dtype_name(t), " is not supported");
  }
}

}  // namespace

Tensor parse_npy(const std::string& bytes, const std::string& name) {
  FOVEA_CHECK(bytes.size() >= 10, ".npy file '", name, "': truncated: ", bytes.size(), " bytes, shorter than a header");
  FOVEA_CHECK(std::memcmp(bytes.data(), kMagic, 6) == 0, ".npy file '", name,
              "': not a .npy file (the magic string \\x93NUMPY is missing)");
  const unsigned major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (size_t(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    FOVEA_CHECK(bytes.size() >= 12, ".npy file '", name, "': truncated header");
    for (int i = 0; i < 4; ++i) header_len |= size_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    FOVEA_FAIL(".npy file '", name, "': format version ", major, " is not supported (1, 2 or 3)");
  }
  FOVEA_CHECK(header_start + header_len <= bytes.size(), ".npy file '", name, "': truncated: header says ", header_len,
              " bytes, file has ", bytes.size() - header_start);
  const Header h = parse_header(bytes.substr(header_start, header_len), name);
  FOVEA_CHECK(!h.fortran, ".npy file '", name, "': Fortran order is not supported; save a C-contiguous array");
  FOVEA_CHECK(int(h.shape.size()) <= Shape::kMaxDims, ".npy file '", name, "': ", h.shape.size(),
              " dimensions, fovea supports at most ", Shape::kMaxDims);
  const DType dtype = dtype_from_descr(h.descr, name);
  // The product of the sizes must not overflow (found by fuzz/fuzz_npy: Shape::numel would wrap).
  uint64_t elements = 1;
  for (int64_t d : h.shape)
    FOVEA_CHECK(!__builtin_mul_overflow(elements, uint64_t(d), &elements) && elements <= (uint64_t(1) << 40),
                ".npy file '", name, "': the shape in the header describes more than 2^40 elements");
  const Shape shape(h.shape);
  const size_t data_bytes = size_t(shape.numel()) * dtype_size(dtype);
  const size_t have = bytes.size() - header_start - header_len;
  FOVEA_CHECK(have >= data_bytes, ".npy file '", name, "': truncated: shape ", shape.str(), " needs ", data_bytes,
              " data bytes, file has ", have);
  FOVEA_CHECK(have == data_bytes, ".npy file '", name, "': ", have - data_bytes,
              " bytes of trailing garbage after the data");
  Tensor t = Tensor::empty(shape, dtype, kCPU);
  if (data_bytes) std::memcpy(t.raw_data(), bytes.data() + header_start + header_len, data_bytes);
  return t;
}

Tensor read_npy(const std::string& path) {
  return parse_npy(read_file(path), path);
}

std::string serialize_npy(const Tensor& t) {
  FOVEA_CHECK(t.device().is_host_memory(), "write_npy: tensor ", t.str(), " is on a GPU; copy it with .to(kCPU) first");
  std::string shape = "(";
  for (int i = 0; i < t.ndim(); ++i) shape += cat(t.shape()[i], t.ndim() == 1 ? "," : (i + 1 < t.ndim() ? ", " : ""));
  shape += ")";
  std::string header = cat("{'descr': '", descr_of(t.dtype()), "', 'fortran_order': False, 'shape': ", shape, ", }");
  // Pad with spaces so that the data starts at a multiple of 64 bytes; the header ends with '\n'.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic, 6);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>((header.size() >> 8) & 0xFF);
  out += header;
  out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  return out;
}

void write_npy(const std::string& path, const Tensor& t) {
  write_file_atomic(path, serialize_npy(t));
}

}  // namespace fovea
