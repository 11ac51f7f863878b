// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, ...,
// "__metadata__": {str: str}}, then the raw little-endian tensor bytes.
//
// Every structural rule of the format is checked (header size limit, valid UTF-8 JSON, known
// dtypes, shape x dtype size == byte span with overflow checks, offsets contiguous and covering
// the data exactly); any violation throws blip::Error naming the file and the reason.
#pragma once

#include "blip/io/named_tensors.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace blip::io {

// Headers larger than this are rejected (the limit of the reference implementation).
inline constexpr std::uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Loads every tensor of `path` (CPU, contiguous), in the order their bytes appear in the file.
// Tensors aligned for their elements are not copied: they point into a private (copy-on-write)
// mapping of the file, which lives as long as they do. When `metadata` is given it receives the `__metadata__` map (empty if absent).
NamedTensors load_safetensors(const std::string& path,
                              std::map<std::string, std::string>* metadata = nullptr);

// Parses a complete safetensors file held in memory; `what` names it in error messages.
NamedTensors parse_safetensors(const std::uint8_t* data, std::size_t size, const std::string& what,
                               std::map<std::string, std::string>* metadata = nullptr);

// Writes `tensors` (any device, any layout: contiguous CPU copies are written) to `path`.
// Like the reference implementation, tensors are laid out by decreasing dtype alignment, then by
// name, so that each tensor's bytes are aligned to its element size; the header is padded with
// spaces to a multiple of 8 bytes. The file is written to a unique `<path>.tmp.<pid>.<n>` and
// renamed over `path`.
// Duplicate names and dtypes the format cannot hold throw blip::Error.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Serialises to bytes in memory (the exact bytes save_safetensors writes).
std::string serialize_safetensors(const NamedTensors& tensors,
                                  const std::map<std::string, std::string>& metadata = {},
                                  const std::string& what = "safetensors");

}  // namespace blip::io
