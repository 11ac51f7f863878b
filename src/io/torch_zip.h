// The torch.save zip container through LibTorch's own PyTorchStreamReader / PyTorchStreamWriter.
// Record names are relative to the archive's top folder ("data.pkl", "data/0", "version"),
// whatever that folder is called. Every LibTorch error becomes a blip::Error naming the file.
#pragma once

#include <c10/core/Allocator.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace caffe2::serialize {
class PyTorchStreamReader;
class PyTorchStreamWriter;
}  // namespace caffe2::serialize

namespace blip::io::detail {

class AtomicFileWriter;

class TorchZipReader {
 public:
  // Validates the zip structure (see zip_check.h), then opens it with LibTorch.
  explicit TorchZipReader(const std::string& path);
  ~TorchZipReader();

  bool has_record(const std::string& name) const;
  // The record's bytes (CPU allocator memory) and size; fails if absent.
  std::pair<at::DataPtr, std::size_t> read_record(const std::string& name) const;
  const std::string& path() const { return path_; }

  // Where an uncompressed record's bytes lie in the file (torch.save stores every record so)
  // and the CRC-32 the archive gives for them; nullopt for a compressed or absent record.
  struct StoredRecord {
    std::uint64_t offset;
    std::uint64_t size;
    std::uint32_t crc32;
  };
  std::optional<StoredRecord> stored_record(const std::string& name) const;

 private:
  std::string path_;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
  std::unordered_map<std::uint64_t, StoredRecord> stored_;  // by data offset
};

// Writes records into `out` (prefix "archive/", as torch.save does through a writer function).
class TorchZipWriter {
 public:
  explicit TorchZipWriter(AtomicFileWriter& out);
  ~TorchZipWriter();

  void write_record(const std::string& name, const void* data, std::size_t size);
  // Writes the version record and the central directory; call before committing `out`.
  void finish();

 private:
  AtomicFileWriter& out_;
  std::string error_;  // first write error; reported by finish() (LibTorch must not see it)
  std::unique_ptr<caffe2::serialize::PyTorchStreamWriter> writer_;
};

// True when `prefix` starts like a zip archive (local header or empty-archive end record).
bool looks_like_zip(const std::string& prefix);

}  // namespace blip::io::detail
