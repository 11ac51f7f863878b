#include "io/file_io.h"

#include "blip/error.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace blip::io::detail {

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

InputFile::InputFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(path, "cannot open for reading: " + errno_text());
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const std::string err = errno_text();
    ::close(fd_);
    fail(path, "cannot stat: " + err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd_);
    fail(path, "is a directory, not a file");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::read_at(std::uint64_t offset, void* dst, std::size_t n, const char* context) const {
  if (offset > size_ || n > size_ - offset)
    fail(path_, std::string("file is truncated: ") + context + " needs bytes [" +
                    std::to_string(offset) + ", " + std::to_string(offset + n) + ") but the file has " +
                    std::to_string(size_));
  auto* out = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t got = ::pread(fd_, out, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail(path_, std::string("read error in ") + context + ": " + errno_text());
    }
    if (got == 0) fail(path_, std::string("unexpected end of file in ") + context);
    out += got;
    offset += static_cast<std::uint64_t>(got);
    n -= static_cast<std::size_t>(got);
  }
}

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path), tmp_path_(path + ".tmp") {
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path, "cannot create '" + tmp_path_ + "': " + errno_text());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, std::size_t n) {
  if (fd_ < 0) fail(path_, "write after the file was closed");
  const auto* in = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t put = ::write(fd_, in, n);
    if (put < 0) {
      if (errno == EINTR) continue;
      fail(path_, "write to '" + tmp_path_ + "' failed: " + errno_text());
    }
    in += put;
    n -= static_cast<std::size_t>(put);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) fail(path_, "commit after the file was closed");
  if (::fsync(fd_) != 0) fail(path_, "fsync of '" + tmp_path_ + "' failed: " + errno_text());
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(path_, "close of '" + tmp_path_ + "' failed: " + errno_text());
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    fail(path_, "cannot rename '" + tmp_path_ + "' over it: " + errno_text());
  committed_ = true;
  // Make the rename itself durable; failure here does not lose data already renamed.
  std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_prefix(const std::string& path, std::size_t n) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out(n, '\0');
  std::size_t have = 0;
  while (have < n) {
    const ssize_t got = ::read(fd, out.data() + have, n - have);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    have += static_cast<std::size_t>(got);
  }
  ::close(fd);
  out.resize(have);
  return out;
}

}  // namespace blip::io::detail
