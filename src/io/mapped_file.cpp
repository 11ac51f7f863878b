#include "io/mapped_file.h"

#include "io/file_io.h"

#include <sys/mman.h>

#include <limits>

namespace blip::io::detail {

std::shared_ptr<MappedFile> MappedFile::map(const InputFile& file) {
  if (file.size() == 0 || file.size() > std::numeric_limits<std::size_t>::max()) return nullptr;
  const auto n = static_cast<std::size_t>(file.size());
  void* base = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.descriptor(), 0);
  if (base == MAP_FAILED) return nullptr;
  return std::shared_ptr<MappedFile>(new MappedFile(base, file.size()));
}

MappedFile::~MappedFile() { ::munmap(base_, static_cast<std::size_t>(size_)); }

at::DataPtr MappedFile::data_ptr(const std::shared_ptr<MappedFile>& file, std::uint64_t offset) {
  auto* keep = new std::shared_ptr<MappedFile>(file);
  void* p = static_cast<std::uint8_t*>(file->base_) + offset;
  return at::DataPtr(p, keep, [](void* ctx) { delete static_cast<std::shared_ptr<MappedFile>*>(ctx); },
                     at::Device(at::kCPU));
}

}  // namespace blip::io::detail
