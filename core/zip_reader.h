// Reading zip archives (PKWARE APPNOTE 6.3.x), the container of PyTorch's torch.save files since
// PyTorch 1.6: the central directory (and its zip64 forms, for archives or entries past 4 GiB),
// stored and deflated entries, CRC-32 checked. No encryption, no multi-disk archives, no writing.
// Every offset and size read from the archive is checked against the archive's size before use.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fovea {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0, size = 0;
  uint64_t data_offset = 0;  // of the (compressed) data in the archive, past the local header
};

// True if `bytes` starts like a zip archive (a local file header or an empty archive's end record).
bool looks_like_zip(std::string_view bytes);

class ZipReader {
 public:
  // Parses the directory of the archive in `bytes` (which must outlive the reader); errors name
  // `name` (the file) and what is wrong.
  ZipReader(std::string_view bytes, std::string name);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view entry_name) const;  // nullptr if absent
  // The entry's content, CRC-checked: a view into the archive for a stored entry, or into
  // `*scratch` (inflated) for a deflated one. A deflated entry larger than `max_size` is refused.
  std::string_view read(const ZipEntry& e, std::string* scratch, uint64_t max_size = uint64_t(1) << 36) const;
  const std::string& name() const { return name_; }

 private:
  std::string_view bytes_;
  std::string name_;
  std::vector<ZipEntry> entries_;
};

}  // namespace fovea
