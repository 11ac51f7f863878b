#include "io/torch_zip.h"

#include "blip/error.h"
#include "io/file_io.h"
#include "io/zip_check.h"

#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>

#include <caffe2/serialize/versions.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <exception>

namespace blip::io::detail {

namespace {

bool same_name_ignoring_case(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Checks, before LibTorch opens the archive, everything its reader's constructor would reject:
// a constructor that throws leaks miniz's state, and these are all cheap to check here.
void check_torch_layout(const InputFile& file, const std::vector<ZipEntry>& entries) {
  const std::string& path = file.path();
  if (file.size() >= 8) {
    char magic[8];
    file.read_at(0, magic, sizeof magic, "file magic");
    if (std::memcmp(magic, "PYTORCH1", 8) == 0) fail(path, "unsupported archive format from a PyTorch preview release");
  }
  if (entries.empty()) fail(path, "zip archive holds no records");
  const auto slash = entries[0].name.find('/');
  if (slash == std::string::npos)
    fail(path, "not a torch.save archive: first record '" + entries[0].name + "' is not inside a folder");
  const std::string prefix = entries[0].name.substr(0, slash + 1);
  // Like miniz's lookup (case-insensitive), '.data/version' first. Names can repeat, and miniz
  // may pick any of the equal ones, so every candidate must pass.
  std::vector<const ZipEntry*> versions;
  for (const char* name : {".data/version", "version"}) {
    for (const auto& e : entries)
      if (same_name_ignoring_case(e.name, prefix + name)) versions.push_back(&e);
    if (!versions.empty()) break;
  }
  if (versions.empty()) fail(path, "not a torch.save archive: no '" + prefix + "version' record");
  for (const ZipEntry* version : versions) {
    // torch.save stores every record uncompressed; a compressed version record could only be
    // checked by inflating it, and LibTorch's constructor leaks when it finds it bad.
    if (version->method != 0)
      fail(path, "torch.save version record is compressed (torch.save stores it uncompressed); re-save the checkpoint");
    if (version->size > 64) fail(path, "torch.save version record is " + std::to_string(version->size) + " bytes long");
    std::string text(version->size, '\0');
    file.read_at(version->data_offset, text.data(), text.size(), "version record");
    if (crc32(text.data(), text.size()) != version->crc32) fail(path, "version record fails its CRC check (corrupt file)");
    std::size_t i = 0;
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    std::uint64_t v = 0;
    std::size_t digits = 0;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) && digits < 18; ++i, ++digits)
      v = v * 10 + static_cast<std::uint64_t>(text[i] - '0');
    if (digits == 0 || v < caffe2::serialize::kMinSupportedFileFormatVersion ||
        v > caffe2::serialize::kMaxSupportedFileFormatVersion)
      fail(path, "unsupported torch.save archive version '" + text.substr(0, 20) + "'");
  }
}

}  // namespace

TorchZipReader::TorchZipReader(const std::string& path) : path_(path) {
  {
    const InputFile file(path);
    const std::vector<ZipEntry> entries = check_zip_structure(file);
    check_torch_layout(file, entries);
    for (const ZipEntry& e : entries)
      if (e.method == 0 && e.compressed_size == e.size) stored_.emplace(e.data_offset, StoredRecord{e.data_offset, e.size, e.crc32});
  }
  try {
    reader_ = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    fail(path, std::string("not a readable torch.save archive: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {  // e.g. std::stoull on a malformed version record
    fail(path, std::string("not a readable torch.save archive: ") + e.what());
  }
}

TorchZipReader::~TorchZipReader() = default;

bool TorchZipReader::has_record(const std::string& name) const {
  try {
    return reader_->hasRecord(name);
  } catch (const c10::Error& e) {
    fail(path_, "zip record '" + name + "': " + e.what_without_backtrace());
  }
}

std::pair<at::DataPtr, std::size_t> TorchZipReader::read_record(const std::string& name) const {
  if (!has_record(name)) fail(path_, "archive has no record '" + name + "'");
  try {
    auto [data, size] = reader_->getRecord(name);
    return {std::move(data), size};
  } catch (const c10::Error& e) {
    fail(path_, "cannot read zip record '" + name + "': " + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    fail(path_, "zip record '" + name + "' is too large to load into memory");
  }
}

std::optional<TorchZipReader::StoredRecord> TorchZipReader::stored_record(const std::string& name) const {
  if (!has_record(name)) return std::nullopt;
  std::uint64_t offset = 0;
  try {
    // LibTorch's own lookup (the one read_record uses), then our checked entry at that offset.
    offset = reader_->getRecordOffset(name);
  } catch (const std::exception&) {  // c10::Error included
    return std::nullopt;
  }
  const auto it = stored_.find(offset);
  if (it == stored_.end()) return std::nullopt;
  return it->second;
}

TorchZipWriter::TorchZipWriter(AtomicFileWriter& out) : out_(out) {
  auto sink = [this](const void* data, std::size_t n) -> std::size_t {
    if (error_.empty()) {
      try {
        out_.write(data, n);
      } catch (const std::exception& e) {
        error_ = e.what();
      }
    }
    return n;  // never report failure to miniz: it would throw from inside LibTorch
  };
  try {
    writer_ = std::make_unique<caffe2::serialize::PyTorchStreamWriter>(sink);
  } catch (const c10::Error& e) {
    fail(out_.path(), std::string("cannot start zip archive: ") + e.what_without_backtrace());
  }
}

TorchZipWriter::~TorchZipWriter() {
  // An unfinished writer finalises itself in its destructor; that must not throw.
  try {
    writer_.reset();
  } catch (...) {
  }
}

void TorchZipWriter::write_record(const std::string& name, const void* data, std::size_t size) {
  try {
    writer_->writeRecord(name, data, size);
  } catch (const c10::Error& e) {
    fail(out_.path(), "cannot write zip record '" + name + "': " + e.what_without_backtrace());
  }
  if (!error_.empty()) throw Error(error_);
}

void TorchZipWriter::finish() {
  try {
    writer_->writeEndOfFile();
  } catch (const c10::Error& e) {
    fail(out_.path(), std::string("cannot finish zip archive: ") + e.what_without_backtrace());
  }
  if (!error_.empty()) throw Error(error_);
}

bool looks_like_zip(const std::string& prefix) {
  return prefix.size() >= 4 && prefix[0] == 'P' && prefix[1] == 'K' &&
         ((prefix[2] == '\x03' && prefix[3] == '\x04') || (prefix[2] == '\x05' && prefix[3] == '\x06'));
}

}  // namespace blip::io::detail
