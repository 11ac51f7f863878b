#include "io/torch_zip.h"

#include "blip/error.h"
#include "io/file_io.h"
#include "io/zip_check.h"

#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>

#include <exception>

namespace blip::io::detail {

TorchZipReader::TorchZipReader(const std::string& path) : path_(path) {
  {
    const InputFile file(path);
    check_zip_structure(file);
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
