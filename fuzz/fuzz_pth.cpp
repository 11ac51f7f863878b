// Fuzzes the whole .pth path (zip structure check, LibTorch's zip reader, unpickler, storage
// records) on raw file bytes, passed as an in-memory file.
#include "blip/error.h"
#include "fuzz_common.h"
#include "blip/io/checkpoint.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const int fd = memfd_create("fuzz.pth", 0);
  if (fd < 0) std::abort();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    blip::io::load_pth(path);  // every storage, read as the pickle names it
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
  }
  try {
    blip::io::load_model_tensors(path);  // lazy: only the model's storages
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
  }
  return 0;
}
