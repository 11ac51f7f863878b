#include "blip/io/atomic_write.h"

#include "blip/error.h"
#include "io/file_io.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace blip::io {

namespace {
constexpr std::size_t kReadChunk = 1 << 16;
std::string errno_text(int err) { return std::strerror(err); }
}  // namespace

void write_file_atomic(const std::string& path, std::string_view data) {
  detail::AtomicFileWriter out(path);  // the one atomic writer: checkpoints use it too
  out.write(data.data(), data.size());
  out.commit();
}

std::string read_file_if_exists(const std::string& path, std::size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    fail(path, "cannot open for reading: " + errno_text(errno));
  }
  std::string out;
  struct stat st {};
  std::string error;
  if (::fstat(fd, &st) != 0) {
    error = "cannot stat: " + errno_text(errno);
  } else if (!S_ISREG(st.st_mode)) {
    error = "is not a regular file";
  } else {
    char buf[kReadChunk];
    for (;;) {
      const ssize_t got = ::read(fd, buf, sizeof buf);
      if (got < 0) {
        if (errno == EINTR) continue;
        error = "read error: " + errno_text(errno);
        break;
      }
      if (got == 0) break;
      if (out.size() + static_cast<std::size_t>(got) > max_bytes) {
        error = "is larger than " + std::to_string(max_bytes) + " bytes";
        break;
      }
      out.append(buf, static_cast<std::size_t>(got));
    }
  }
  ::close(fd);
  if (!error.empty()) fail(path, error);
  return out;
}

}  // namespace blip::io
