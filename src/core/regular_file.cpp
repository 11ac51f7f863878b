#include "core/regular_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blip/error.h"

namespace blip::files {

namespace {

constexpr std::size_t kReadChunk = std::size_t{1} << 16;

// "a config file", "an annotation file".
std::string with_article(const std::string& what) {
  const bool vowel = !what.empty() && std::string("aeiou").find(what[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + what;
}

[[noreturn]] void fail_not_regular(const std::string& path, mode_t mode, const std::string& what) {
  if (S_ISDIR(mode)) fail(path, "is a directory, not " + with_article(what));
  fail(path, "is not a regular file (" + file_type_name(mode) + "); expected " + with_article(what));
}

[[noreturn]] void fail_too_large(const std::string& path, std::uint64_t max_bytes, const std::string& what) {
  fail(path, "is larger than " + size_text(max_bytes) + ", the limit for " + with_article(what));
}

}  // namespace

std::string file_type_name(unsigned mode) {
  const auto m = static_cast<mode_t>(mode);
  if (S_ISREG(m)) return "a regular file";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISLNK(m)) return "a symbolic link";
  return "an unknown file type";
}

std::string size_text(std::uint64_t bytes) {
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  return std::to_string(bytes) + " bytes";
}

int open_regular_file(const std::string& path, const std::string& what, std::uint64_t* size) {
  if (path.empty()) fail("<empty path>", "no " + what + " given");
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused right after.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) fail(path, what + " not found");
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) fail_not_regular(path, st.st_mode, what);
    fail(path, "cannot open " + what + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, "cannot stat " + what + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail_not_regular(path, st.st_mode, what);
  }
  // Regular files ignore O_NONBLOCK, but clear it so that later reads are plainly blocking.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  if (size) *size = static_cast<std::uint64_t>(st.st_size);
  return fd;
}

void require_regular_file(const std::string& path, std::uint64_t max_bytes, const std::string& what) {
  std::uint64_t size = 0;
  ::close(open_regular_file(path, what, &size));
  if (size > max_bytes) fail_too_large(path, max_bytes, what);
}

std::string read_regular_file(const std::string& path, std::uint64_t max_bytes, const std::string& what) {
  std::uint64_t size = 0;
  const int fd = open_regular_file(path, what, &size);
  if (size > max_bytes) {
    ::close(fd);
    fail_too_large(path, max_bytes, what);
  }
  std::string out;
  out.reserve(static_cast<std::size_t>(size));
  char buf[kReadChunk];
  for (;;) {
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      fail(path, "read error in " + what + ": " + std::strerror(err));
    }
    if (got == 0) break;
    if (out.size() + static_cast<std::size_t>(got) > max_bytes) {  // it grew after the fstat
      ::close(fd);
      fail_too_large(path, max_bytes, what);
    }
    out.append(buf, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return out;
}

}  // namespace blip::files
