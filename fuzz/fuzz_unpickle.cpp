// Fuzzes the restricted unpickler on raw pickle bytes. Anything but a value or a blip::Error
// (a crash, a sanitizer report, another exception) is a bug. Values that load are pickled again
// and must load again.
#include "blip/error.h"
#include "fuzz_common.h"
#include "blip/io/pickle.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>
#include <vector>

namespace {
constexpr std::int64_t kMaxStorageBytes = 1 << 20;

at::Storage zero_storage(const std::string&, at::ScalarType dtype, std::int64_t numel) {
  if (numel > kMaxStorageBytes / static_cast<std::int64_t>(c10::elementSize(dtype)))
    blip::fail("fuzz", "storage too large for the fuzzer");
  return at::zeros({numel}, at::TensorOptions().dtype(dtype)).storage();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace pk = blip::io::pickle;
  pk::Value v;
  try {
    v = pk::unpickle(data, size, "fuzz.pkl", zero_storage);
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
    return 0;
  }
  try {
    (void)pk::to_json(v, 100000);
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
  }
  std::vector<at::Tensor> stored;
  std::string again;
  try {
    again = pk::pickle(v, [&](const at::Tensor& t) {
      stored.push_back(t);
      return std::to_string(stored.size() - 1);
    }, "fuzz.out");
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
    return 0;  // e.g. a bare storage value
  }
  try {
    pk::unpickle(reinterpret_cast<const std::uint8_t*>(again.data()), again.size(), "fuzz.out",
                 [&](const std::string& key, at::ScalarType, std::int64_t) { return stored.at(std::stoul(key)).storage(); });
  } catch (const blip::Error& e) {
    std::fprintf(stderr, "re-reading our own pickle failed: %s\n", e.what());
    std::abort();
  }
  return 0;
}
