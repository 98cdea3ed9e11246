// Hand-built PyTorch files for tests and fuzz seeds: a pickle writer (the opcodes torch.save uses,
// and any others a hostile file may use) and a zip writer (stored entries, optionally with every
// size in zip64 form). Independent of core/pth.cpp and core/zip_reader.cpp, which read them.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fovea::test {

inline std::string le_bytes(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += char((v >> (8 * i)) & 0xFF);
  return s;
}

struct PickleWriter {
  std::string b;
  PickleWriter& proto(int v) { return raw(std::string("\x80", 1) + char(v)); }
  PickleWriter& raw(const std::string& s) {
    b += s;
    return *this;
  }
  PickleWriter& op(char c) {
    b += c;
    return *this;
  }
  // (appends piece by piece: "c" + std::string trips a false -Wrestrict warning in GCC 12)
  PickleWriter& global(const std::string& module, const std::string& name) {
    op('c').raw(module).op('\n').raw(name);
    return op('\n');
  }
  PickleWriter& str(const std::string& s) {
    op('X').raw(le_bytes(s.size(), 4));
    return raw(s);
  }
  PickleWriter& integer(int64_t v) {
    if (v >= 0 && v < 256) return op('K').raw(le_bytes(uint64_t(v), 1));
    if (v >= INT32_MIN && v <= INT32_MAX) return op('J').raw(le_bytes(uint64_t(v), 4));
    return raw(std::string("\x8a\x08", 2) + le_bytes(uint64_t(v), 8));
  }
  PickleWriter& mark() { return op('('); }
  PickleWriter& tuple() { return op('t'); }
  PickleWriter& empty_tuple() { return op(')'); }
  PickleWriter& empty_dict() { return op('}'); }
  PickleWriter& reduce() { return op('R'); }
  PickleWriter& setitems() { return op('u'); }
  PickleWriter& stop() { return op('.'); }
  PickleWriter& boolean(bool v) { return raw(v ? "\x88" : "\x89"); }
  PickleWriter& ints(const std::vector<int64_t>& v) {
    mark();
    for (int64_t x : v) integer(x);
    return tuple();
  }
  // torch._utils._rebuild_tensor_v2(storage `key` of `numel` elements of torch.<type>, offset, size, stride, ...)
  PickleWriter& tensor(const std::string& type, const std::string& key, int64_t numel, int64_t offset,
                       const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    mark().str("storage").global("torch", type).str(key).str("cpu").integer(numel).tuple().op('Q');
    integer(offset).ints(size).ints(stride).boolean(false);
    global("collections", "OrderedDict").empty_tuple().reduce();
    return tuple().reduce();
  }
};

// A minimal state_dict pickle: {"w": float32 [2, 3] in storage "0", "n": int64 [] in storage "1"}.
inline std::string small_state_dict_pickle() {
  PickleWriter p;
  p.proto(2).global("collections", "OrderedDict").empty_tuple().reduce().mark();
  p.str("w").tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  p.str("n").tensor("LongStorage", "1", 1, 0, {}, {});
  return p.setitems().stop().b;
}

struct ZipFileEntry {
  std::string name, data;
};

// A zip archive of stored entries, as torch.save writes it. With zip64, every size and offset in the
// central directory is 0xFFFFFFFF with the values in a zip64 extra field, and the end record is
// preceded by a zip64 end record and locator (what writers do past 4 GiB).
inline std::string make_zip(const std::vector<ZipFileEntry>& entries, bool zip64 = false) {
  std::string out, dir;
  for (const ZipFileEntry& e : entries) {
    const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(e.data.data()), uInt(e.data.size())));
    const uint64_t offset = out.size();
    out += le_bytes(0x04034b50, 4) + le_bytes(zip64 ? 45 : 20, 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 4) +
           le_bytes(crc, 4) + le_bytes(e.data.size(), 4) + le_bytes(e.data.size(), 4) + le_bytes(e.name.size(), 2) +
           le_bytes(0, 2) + e.name + e.data;
    const std::string extra = zip64 ? le_bytes(1, 2) + le_bytes(24, 2) + le_bytes(e.data.size(), 8) +
                                          le_bytes(e.data.size(), 8) + le_bytes(offset, 8)
                                    : "";
    const uint64_t sat = 0xFFFFFFFFu;
    dir += le_bytes(0x02014b50, 4) + le_bytes(zip64 ? 45 : 20, 2) + le_bytes(zip64 ? 45 : 20, 2) + le_bytes(0, 2) +
           le_bytes(0, 2) + le_bytes(0, 4) + le_bytes(crc, 4) + le_bytes(zip64 ? sat : e.data.size(), 4) +
           le_bytes(zip64 ? sat : e.data.size(), 4) + le_bytes(e.name.size(), 2) + le_bytes(extra.size(), 2) +
           le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 4) + le_bytes(zip64 ? sat : offset, 4) +
           e.name + extra;
  }
  const uint64_t dir_offset = out.size();
  out += dir;
  if (zip64) {
    const uint64_t z = out.size();
    out += le_bytes(0x06064b50, 4) + le_bytes(44, 8) + le_bytes(45, 2) + le_bytes(45, 2) + le_bytes(0, 4) +
           le_bytes(0, 4) + le_bytes(entries.size(), 8) + le_bytes(entries.size(), 8) + le_bytes(dir.size(), 8) +
           le_bytes(dir_offset, 8);
    out += le_bytes(0x07064b50, 4) + le_bytes(0, 4) + le_bytes(z, 8) + le_bytes(1, 4);
  }
  out += le_bytes(0x06054b50, 4) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(zip64 ? 0xFFFF : entries.size(), 2) +
         le_bytes(zip64 ? 0xFFFF : entries.size(), 2) + le_bytes(zip64 ? 0xFFFFFFFFu : dir.size(), 4) +
         le_bytes(zip64 ? 0xFFFFFFFFu : dir_offset, 4) + le_bytes(0, 2);
  return out;
}

// A torch.save-like archive "archive/..." holding `pickle` and storages "0" (6 floats 0.5, 1.5, ...)
// and "1" (one int64, 42), the storages small_state_dict_pickle() names.
inline std::string make_pth(const std::string& pickle, bool zip64 = false) {
  std::string floats, longs = le_bytes(42, 8);
  for (int i = 0; i < 6; ++i) {
    const float v = float(i) + 0.5f;
    floats.append(reinterpret_cast<const char*>(&v), 4);
  }
  return make_zip(
      {{"archive/data.pkl", pickle}, {"archive/data/0", floats}, {"archive/data/1", longs}, {"archive/version", "3\n"}},
      zip64);
}

}  // namespace fovea::test
