#include "io/file_io.h"

#include "blip/error.h"
#include "core/regular_file.h"

#include <atomic>
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
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) fail(path, "cannot open for reading: " + errno_text());
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const std::string err = errno_text();
    ::close(fd_);
    fail(path, "cannot stat: " + err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    if (S_ISDIR(st.st_mode)) fail(path, "is a directory, not a file");
    fail(path, "is not a regular file (" + files::file_type_name(st.st_mode) + ")");
  }
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
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

namespace {

// Refuses to replace anything but a regular file (a device, FIFO, directory or symlink at the
// target is left alone); returns the mode bits an existing file keeps.
mode_t check_replaceable(const std::string& path) {
  constexpr mode_t kNewFileMode = 0644;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return kNewFileMode;
    fail(path, "cannot stat: " + errno_text());
  }
  if (!S_ISREG(st.st_mode))
    fail(path, "is not a regular file (" + files::file_type_name(st.st_mode) + "); refusing to replace it");
  return st.st_mode & 0777;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
  if (path.empty()) fail("<empty path>", "cannot write a file without a name");
  const mode_t mode = check_replaceable(path);
  // The temporary name is unique to this process and writer and created exclusively without
  // following links (O_EXCL|O_NOFOLLOW), so two writers of the same path (ranks, a second run)
  // never share a file, and a planted symlink or stale file is never followed or truncated.
  static std::atomic<unsigned> counter{0};
  constexpr int kAttempts = 100;
  for (int attempt = 0; attempt < kAttempts && fd_ < 0; ++attempt) {
    tmp_path_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd_ < 0 && errno != EEXIST) break;
  }
  if (fd_ < 0) fail(path, "cannot create a temporary file '" + tmp_path_ + "' next to it: " + errno_text());
  // O_CREAT applies the umask; an existing file's own bits are kept exactly.
  ::fchmod(fd_, mode);
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
  check_replaceable(path_);  // again: something may have appeared at the target meanwhile
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
  // Never blocks on a FIFO or reads a device: anything but a regular file sniffs as "".
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return {};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return {};
  }
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
