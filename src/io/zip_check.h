// Structural validation of a zip archive before LibTorch's reader (miniz) sees it: every offset
// and size in the end-of-central-directory record, the central directory and the local headers
// must lie inside the file, and no entry may claim more uncompressed bytes than its compressed
// data could produce. This keeps hostile archives from driving huge allocations or reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace blip::io::detail {

class InputFile;

struct ZipEntry {
  std::string name;
  std::uint32_t method;      // 0 stored, 8 deflate
  std::uint32_t crc32;
  std::uint64_t compressed_size, size;
  std::uint64_t data_offset;  // first byte of the (compressed) data in the file
};

// Throws blip::Error naming the file and the first problem found; returns the entries in
// central-directory order.
std::vector<ZipEntry> check_zip_structure(const InputFile& file);

// The CRC-32 zip stores for each entry.
std::uint32_t crc32(const void* data, std::size_t n);

}  // namespace blip::io::detail
