#include "io/zip_check.h"

#include "blip/error.h"
#include "io/file_io.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <zlib.h>

namespace blip::io::detail {

namespace {

constexpr std::uint32_t kEocdSig = 0x06054b50, kZip64EocdSig = 0x06064b50, kZip64LocatorSig = 0x07064b50,
                        kCentralSig = 0x02014b50, kLocalSig = 0x04034b50;
constexpr std::size_t kEocdSize = 22, kZip64LocatorSize = 20, kZip64EocdSize = 56, kCentralSize = 46,
                      kLocalSize = 30, kMaxCommentSize = 0xffff;
// Deflate cannot expand data by more than about 1032:1.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

std::uint64_t le(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Directory {
  std::uint64_t entries, offset, size, end;  // end: where the central directory must stop
};

// Finds the central directory exactly as miniz (LibTorch's zip library) will: the last
// end-of-central-directory signature with room for the record after it, and the zip64 record
// whenever a zip64 locator points at one, whatever the 32-bit fields say.
Directory find_directory(const InputFile& f) {
  const std::string& path = f.path();
  const std::uint64_t size = f.size();
  if (size < kEocdSize) fail(path, "truncated, or not a zip archive: " + std::to_string(size) + " bytes is too small");
  const std::uint64_t tail_len = std::min<std::uint64_t>(size, kEocdSize + kMaxCommentSize);
  std::vector<std::uint8_t> tail(tail_len);
  f.read_at(size - tail_len, tail.data(), tail.size(), "zip end record");
  std::int64_t at = -1;
  for (std::int64_t i = static_cast<std::int64_t>(tail_len - kEocdSize); i >= 0 && at < 0; --i)
    if (le(tail.data() + i, 4) == kEocdSig) at = i;
  if (at < 0) fail(path, "not a zip archive, or truncated: no end-of-central-directory record");
  const std::uint8_t* e = tail.data() + at;
  const std::uint64_t eocd_pos = size - tail_len + static_cast<std::uint64_t>(at);
  if (eocd_pos + kEocdSize + le(e + 20, 2) > size) fail(path, "zip end record's comment runs past the end of the file");
  Directory d{le(e + 10, 2), le(e + 16, 4), le(e + 12, 4), eocd_pos};
  if (le(e + 4, 2) != 0 || le(e + 6, 2) != 0 || le(e + 8, 2) != d.entries)
    fail(path, "multi-disk zip archives are not supported");

  if (eocd_pos >= kZip64LocatorSize + kZip64EocdSize) {
    std::uint8_t loc[kZip64LocatorSize];
    f.read_at(eocd_pos - kZip64LocatorSize, loc, sizeof loc, "zip64 locator");
    if (le(loc, 4) == kZip64LocatorSig) {
      const std::uint64_t z_pos = le(loc + 8, 8);
      if (z_pos > size - kZip64EocdSize) fail(path, "zip64 end record offset lies outside the archive");
      std::uint8_t z[kZip64EocdSize];
      f.read_at(z_pos, z, sizeof z, "zip64 end record");
      if (le(z, 4) == kZip64EocdSig) {
        if (le(loc + 16, 4) != 1 || le(z + 16, 4) != 0 || le(z + 20, 4) != 0 || le(z + 24, 8) != le(z + 32, 8))
          fail(path, "multi-disk zip archives are not supported");
        if (le(z + 4, 8) < kZip64EocdSize - 12) fail(path, "zip64 end record is too short");
        if (z_pos > eocd_pos) fail(path, "zip64 end record lies after the end record");
        d = Directory{le(z + 32, 8), le(z + 48, 8), le(z + 40, 8), z_pos};
      }
    }
  }
  if (d.offset > d.end || d.size > d.end - d.offset)
    fail(path, "zip central directory (offset " + std::to_string(d.offset) + ", " + std::to_string(d.size) +
                   " bytes) lies outside the archive of " + std::to_string(size) + " bytes; the file is truncated or corrupt");
  if (d.entries > d.size / kCentralSize)
    fail(path, "zip central directory claims " + std::to_string(d.entries) + " entries but has room for " +
                   std::to_string(d.size / kCentralSize));
  return d;
}

}  // namespace

std::uint32_t crc32(const void* data, std::size_t n) {
  // zlib's crc32_z: ~3 GB/s here, several times a byte-wise table (it checks whole checkpoints).
  return static_cast<std::uint32_t>(::crc32_z(0, static_cast<const Bytef*>(data), n));
}

std::vector<ZipEntry> check_zip_structure(const InputFile& f) {
  const std::string& path = f.path();
  const Directory d = find_directory(f);
  std::vector<ZipEntry> entries;
  entries.reserve(d.entries);
  std::vector<std::uint8_t> cd(d.size);
  f.read_at(d.offset, cd.data(), cd.size(), "zip central directory");

  std::uint64_t pos = 0;
  for (std::uint64_t i = 0; i < d.entries; ++i) {
    const std::string entry = "zip entry " + std::to_string(i);
    if (cd.size() - pos < kCentralSize) fail(path, entry + " runs past the central directory");
    const std::uint8_t* c = cd.data() + pos;
    if (le(c, 4) != kCentralSig) fail(path, entry + " has a bad central-directory signature");
    const std::uint64_t flags = le(c + 8, 2), method = le(c + 10, 2);
    std::uint64_t comp = le(c + 20, 4), uncomp = le(c + 24, 4), local = le(c + 42, 4);
    const std::uint64_t name_len = le(c + 28, 2), extra_len = le(c + 30, 2), comment_len = le(c + 32, 2);
    const std::uint64_t rec_len = kCentralSize + name_len + extra_len + comment_len;
    if (cd.size() - pos < rec_len) fail(path, entry + " runs past the central directory");
    const std::string name(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    const std::string label = "zip entry '" + name + "'";

    // Zip64 sizes and offsets live in extra field 0x0001, present only for saturated fields.
    const std::uint8_t* x = c + kCentralSize + name_len;
    for (std::uint64_t xp = 0; xp + 4 <= extra_len;) {
      const std::uint64_t id = le(x + xp, 2), len = le(x + xp + 2, 2);
      if (xp + 4 + len > extra_len) fail(path, label + " has a malformed extra field");
      if (id == 0x0001) {
        std::uint64_t q = xp + 4;
        const auto next = [&](std::uint64_t& field) {
          if (field != 0xffffffff) return;
          if (q + 8 > xp + 4 + len) fail(path, label + " has a short zip64 extra field");
          field = le(x + q, 8);
          q += 8;
        };
        next(uncomp);
        next(comp);
        next(local);
      }
      xp += 4 + len;
    }
    // Encrypted (0x1, 0x40), patch data (0x20) or masked headers (0x2000): miniz refuses them.
    if (flags & (0x1 | 0x20 | 0x40 | 0x2000))
      fail(path, label + " uses unsupported zip features (encryption or patch data, flags " + std::to_string(flags) + ")");
    // miniz returns no data for what it takes to be a directory (a name ending in '/', or the
    // DOS directory attribute), leaving the record's buffer unwritten.
    const bool directory = (!name.empty() && name.back() == '/') || (le(c + 38, 4) & 0x10);
    if (directory && uncomp != 0)
      fail(path, label + " is marked as a directory but holds " + std::to_string(uncomp) + " bytes");
    if (method == 0) {
      if (comp != uncomp) fail(path, label + " is stored but its sizes differ");
    } else if (method == 8) {
      if (comp > 0 && uncomp / kMaxDeflateRatio > comp) fail(path, label + " claims an impossible compression ratio");
    } else {
      fail(path, label + " uses unsupported compression method " + std::to_string(method));
    }
    if (local > d.offset || d.offset - local < kLocalSize)
      fail(path, label + " local header lies outside the archive");
    std::uint8_t lh[kLocalSize];
    f.read_at(local, lh, sizeof lh, "zip local header");
    if (le(lh, 4) != kLocalSig) fail(path, label + " has a bad local-header signature (truncated or corrupt file)");
    const std::uint64_t data_start = local + kLocalSize + le(lh + 26, 2) + le(lh + 28, 2);
    if (data_start > d.offset || comp > d.offset - data_start)
      fail(path, label + " data (" + std::to_string(comp) + " bytes at " + std::to_string(data_start) +
                     ") runs past the start of the central directory: the file is truncated or corrupt");
    entries.push_back({name, static_cast<std::uint32_t>(method), static_cast<std::uint32_t>(le(c + 16, 4)), comp,
                       uncomp, data_start});
    pos += rec_len;
  }
  return entries;
}

}  // namespace blip::io::detail
