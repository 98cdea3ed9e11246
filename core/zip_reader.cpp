#include "core/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <set>

#include "core/error.h"

namespace fovea {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kZip64EndSize = 56, kZip64LocatorSize = 20;
// Deflate cannot expand data by more than about 1032:1, so a larger claimed size is a lie (or a bomb).
constexpr uint64_t kMaxDeflateRatio = 1032;

uint64_t le(std::string_view b, uint64_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}

}  // namespace

bool looks_like_zip(std::string_view bytes) {
  return bytes.size() >= 4 && (le(bytes, 0, 4) == kLocalSig || le(bytes, 0, 4) == kEndSig);
}

ZipReader::ZipReader(std::string_view bytes, std::string name) : bytes_(bytes), name_(std::move(name)) {
  const auto where = [&] { return cat("zip file '", name_, "': "); };
  const uint64_t size = bytes.size();
  // [at, at + n) lies in the archive (written so that nothing can wrap around).
  const auto fits = [&](uint64_t at, uint64_t n) { return at <= size && n <= size - at; };
  FOVEA_CHECK(size >= kEndSize, where(), "truncated: ", size, " bytes, shorter than the end-of-directory record");
  // The end record sits at the end, before a comment of at most 65535 bytes.
  uint64_t end = size;  // position of the end record, `size` while not found
  for (uint64_t p = size - kEndSize + 1; p-- > 0 && size - p <= kEndSize + 0xFFFF;) {
    if (le(bytes, p, 4) == kEndSig && p + kEndSize + le(bytes, p + 20, 2) <= size) {
      end = p;
      break;
    }
  }
  FOVEA_CHECK(end < size, where(), "no end-of-central-directory record: not a zip file, or truncated");
  FOVEA_CHECK(le(bytes, end + 4, 2) == 0 && le(bytes, end + 6, 2) == 0, where(),
              "multi-disk archives are not supported");
  uint64_t count = le(bytes, end + 10, 2), dir_size = le(bytes, end + 12, 4), dir_offset = le(bytes, end + 16, 4);
  // zip64: a locator just before the end record points to the zip64 end record with 64-bit fields.
  if (end >= kZip64LocatorSize && le(bytes, end - kZip64LocatorSize, 4) == kZip64LocatorSig) {
    const uint64_t z = le(bytes, end - kZip64LocatorSize + 8, 8);
    FOVEA_CHECK(fits(z, kZip64EndSize) && le(bytes, z, 4) == kZip64EndSig, where(), "the zip64 locator at byte offset ",
                end - kZip64LocatorSize, " points to byte offset ", z, ", where there is no zip64 end record");
    count = le(bytes, z + 32, 8);
    dir_size = le(bytes, z + 40, 8);
    dir_offset = le(bytes, z + 48, 8);
  }
  FOVEA_CHECK(fits(dir_offset, dir_size), where(), "the central directory (byte offset ", dir_offset, ", ", dir_size,
              " bytes) runs past the end of the file (", size, " bytes): truncated?");
  FOVEA_CHECK(count <= dir_size / kCentralSize, where(), "the end record claims ", count,
              " entries, more than a central directory of ", dir_size, " bytes can hold");
  entries_.reserve(count);
  std::set<std::string_view> seen;
  uint64_t p = dir_offset;
  for (uint64_t i = 0; i < count; ++i) {
    FOVEA_CHECK(p <= dir_offset + dir_size - kCentralSize && le(bytes, p, 4) == kCentralSig, where(),
                "central directory entry ", i, " at byte offset ", p, " is missing or corrupt");
    const uint64_t flags = le(bytes, p + 8, 2), name_len = le(bytes, p + 28, 2), extra_len = le(bytes, p + 30, 2),
                   comment_len = le(bytes, p + 32, 2);
    const uint64_t record = kCentralSize + name_len + extra_len + comment_len;
    FOVEA_CHECK(record <= dir_offset + dir_size - p, where(), "central directory entry ", i, " at byte offset ", p,
                " runs past the directory");
    ZipEntry e;
    e.name.assign(bytes.substr(p + kCentralSize, name_len));
    const auto bad = [&](const auto&... what) { FOVEA_FAIL(where(), "entry '", e.name, "': ", what...); };
    if (flags & 1) bad("is encrypted, which is not supported");
    e.method = uint16_t(le(bytes, p + 10, 2));
    if (e.method != 0 && e.method != 8) bad("compression method ", e.method, " is not supported (stored or deflated)");
    e.crc32 = uint32_t(le(bytes, p + 16, 4));
    e.compressed_size = le(bytes, p + 20, 4);
    e.size = le(bytes, p + 24, 4);
    uint64_t local = le(bytes, p + 42, 4);
    // zip64 extended information: 64-bit values for the fields saturated at 0xFFFFFFFF, in this order.
    for (uint64_t x = p + kCentralSize + name_len, xend = x + extra_len; x + 4 <= xend;) {
      const uint64_t id = le(bytes, x, 2), n = le(bytes, x + 2, 2);
      if (n > xend - x - 4) bad("extra field at byte offset ", x, " runs past its entry");
      if (id == 1) {
        uint64_t q = x + 4;
        for (uint64_t* field : {&e.size, &e.compressed_size, &local}) {
          if (*field != 0xFFFFFFFFu) continue;
          if (q + 8 > x + 4 + n) bad("zip64 extra field at byte offset ", x, " is too short");
          *field = le(bytes, q, 8);
          q += 8;
        }
      }
      x += 4 + n;
    }
    if (!fits(local, kLocalSize) || le(bytes, local, 4) != kLocalSig)
      bad("no local header at byte offset ", local, " (truncated or corrupt file)");
    const uint64_t lname = le(bytes, local + 26, 2), lextra = le(bytes, local + 28, 2);
    if (lname != name_len || !fits(local + kLocalSize, lname) ||
        bytes.substr(local + kLocalSize, lname) != bytes.substr(p + kCentralSize, name_len))
      bad("the local header at byte offset ", local, " names a different entry");
    e.data_offset = local + kLocalSize + lname + lextra;
    if (!fits(e.data_offset, e.compressed_size))
      bad("its data (byte offset ", e.data_offset, ", ", e.compressed_size, " bytes) runs past the end of the file (",
          size, " bytes): truncated?");
    if (e.method == 0 && e.compressed_size != e.size)
      bad("stored, but its compressed size ", e.compressed_size, " differs from its size ", e.size);
    if (!seen.insert(bytes.substr(p + kCentralSize, name_len)).second) bad("appears twice in the archive");
    entries_.push_back(std::move(e));
    p += record;
  }
}

const ZipEntry* ZipReader::find(std::string_view entry_name) const {
  for (const ZipEntry& e : entries_)
    if (e.name == entry_name) return &e;
  return nullptr;
}

std::string_view ZipReader::read(const ZipEntry& e, std::string* scratch, uint64_t max_size) const {
  const auto where = [&] { return cat("zip file '", name_, "': entry '", e.name, "': "); };
  const std::string_view raw = bytes_.substr(e.data_offset, e.compressed_size);
  std::string_view out = raw;
  if (e.method == 8) {
    FOVEA_CHECK(e.size <= max_size && e.size / kMaxDeflateRatio <= e.compressed_size + 1, where(), "claims ", e.size,
                " bytes inflated from ", e.compressed_size, " compressed: refused (limit ", max_size,
                " bytes, deflate ratio at most ", kMaxDeflateRatio, ":1)");
    scratch->assign(e.size, '\0');
    z_stream zs{};
    FOVEA_CHECK(inflateInit2(&zs, -MAX_WBITS) == Z_OK, where(), "inflateInit2 failed");
    uint64_t in_done = 0, out_done = 0;
    int rc = Z_OK;
    // zlib counts in uInt (32 bits): feed and drain in pieces.
    while (rc == Z_OK) {
      const uInt in_chunk = uInt(std::min<uint64_t>(raw.size() - in_done, 1u << 30));
      const uInt out_chunk = uInt(std::min<uint64_t>(e.size - out_done, 1u << 30));
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data() + in_done));
      zs.avail_in = in_chunk;
      zs.next_out = reinterpret_cast<Bytef*>(scratch->data() + out_done);
      zs.avail_out = out_chunk;
      rc = inflate(&zs, Z_NO_FLUSH);
      in_done += in_chunk - zs.avail_in;
      out_done += out_chunk - zs.avail_out;
      if (rc == Z_OK && zs.avail_in == in_chunk && zs.avail_out == out_chunk) rc = Z_BUF_ERROR;  // no progress
    }
    const std::string msg = zs.msg ? zs.msg : "";
    inflateEnd(&zs);
    FOVEA_CHECK(rc == Z_STREAM_END, where(), "corrupt deflate data",
                rc == Z_BUF_ERROR ? " (it ends early or inflates to more than its recorded size)" : "",
                msg.empty() ? "" : ": ", msg);
    FOVEA_CHECK(out_done == e.size, where(), "inflates to ", out_done, " bytes, not its recorded ", e.size);
    out = *scratch;
  }
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  uLong crc = crc32_z(0, nullptr, 0);
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(out.data()), out.size());
  FOVEA_CHECK(uint32_t(crc) == e.crc32, where(), "CRC-32 mismatch (computed ", uint32_t(crc), ", recorded ", e.crc32,
              "): the file is corrupt");
#endif
  return out;
}

}  // namespace fovea
