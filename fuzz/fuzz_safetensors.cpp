// Fuzzes the safetensors parser on raw file bytes; files that parse are written again and must
// parse to the same tensors.
#include "blip/error.h"
#include "fuzz_common.h"
#include "blip/io/safetensors.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace io = blip::io;
  io::NamedTensors tensors;
  std::map<std::string, std::string> metadata;
  try {
    tensors = io::parse_safetensors(data, size, "fuzz.safetensors", &metadata);
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
    return 0;
  }
  std::string again;
  try {
    again = io::serialize_safetensors(tensors, metadata);
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
    return 0;  // e.g. names that are not valid UTF-8 for the JSON writer
  }
  std::map<std::string, std::string> metadata2;
  const auto back = io::parse_safetensors(reinterpret_cast<const std::uint8_t*>(again.data()), again.size(),
                                          "fuzz.again", &metadata2);
  if (back.size() != tensors.size() || metadata2 != metadata) std::abort();
  for (const auto& [name, t] : back) {
    bool found = false;
    for (const auto& [n0, t0] : tensors)
      if (n0 == name) found = t0.scalar_type() == t.scalar_type() && t0.sizes() == t.sizes() &&
                              t0.nbytes() == t.nbytes() &&
                              // an empty tensor may have no data pointer (memcmp(nullptr, ...) is UB)
                              (t.nbytes() == 0 || std::memcmp(t0.data_ptr(), t.data_ptr(), t.nbytes()) == 0);
    if (!found) std::abort();
  }
  return 0;
}
