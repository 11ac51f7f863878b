// Plain file access shared by the checkpoint readers and writers: bounded reads that report
// errors by file name, and an atomic writer (write a unique `<path>.tmp.<pid>.<n>`, fsync, rename
// over `path`) so that a crash never leaves a half-written checkpoint under the final name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace blip::io::detail {

// A read-only file; every failure throws blip::Error naming the path.
class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  std::uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  int descriptor() const { return fd_; }
  // Reads exactly n bytes at `offset`; fails (naming `context`) if the file is shorter.
  void read_at(std::uint64_t offset, void* dst, std::size_t n, const char* context) const;

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// Writes to `<path>.tmp.<pid>.<n>` in the same directory, created exclusively (O_EXCL);
// commit() fsyncs, closes and renames it over `path`. Destroying an uncommitted writer removes the
// temporary file (a killed process leaves it behind, never a partial file under `path`).
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, std::size_t n);
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// The first up-to-n bytes of a file ("" when it cannot be read); used to sniff formats.
std::string read_prefix(const std::string& path, std::size_t n);

}  // namespace blip::io::detail
