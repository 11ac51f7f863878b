// A whole file mapped into memory for tensors to point into instead of copying it: private and
// writable (copy-on-write), so a tensor modified in place never changes the file. The mapping
// lives as long as any tensor made from it.
//
// Like any mapping, it assumes the file is not truncated while mapped (atomic replacement, as our
// writers and `mv` do, is safe: the mapping keeps the old file).
#pragma once

#include <ATen/core/TensorBody.h>
#include <c10/core/Allocator.h>

#include <cstdint>
#include <memory>

namespace blip::io::detail {

class InputFile;

class MappedFile {
 public:
  // Maps all of `file`; nullptr when the file is empty or the system refuses the mapping (the
  // caller then reads the file instead).
  static std::shared_ptr<MappedFile> map(const InputFile& file);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return static_cast<const std::uint8_t*>(base_); }
  std::uint64_t size() const { return size_; }

  // A CPU DataPtr to byte `offset` of `file`'s mapping that keeps the mapping alive.
  static at::DataPtr data_ptr(const std::shared_ptr<MappedFile>& file, std::uint64_t offset);

 private:
  MappedFile(void* base, std::uint64_t size) : base_(base), size_(size) {}
  void* base_;
  std::uint64_t size_;
};

}  // namespace blip::io::detail
