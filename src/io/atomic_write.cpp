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
  // O_NONBLOCK: a FIFO must not block the open; it is refused below as not a regular file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
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
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
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

void ensure_writable_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  if (dir.empty()) fail("<empty path>", "no output directory given");
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (fs::exists(status) && !fs::is_directory(status)) fail(dir, "exists and is not a directory");
  if (!fs::exists(status)) {
    fs::create_directories(dir, ec);
    if (ec) fail(dir, "cannot create the directory: " + ec.message());
  }
  // Permission bits alone do not tell (root ignores them, a read-only mount does not show in
  // them): create a file exclusively, with a name no other process uses, and remove it.
  static std::atomic<unsigned> counter{0};
  const std::string probe = (fs::path(dir) / (".blip_write_probe." + std::to_string(::getpid()) + "." +
                                               std::to_string(counter++)))
                                .string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) fail(dir, "is not writable: " + errno_text(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace blip::io
