// The atomic writer never replaces what is not a regular file (a FIFO, a device such as
// /dev/null, a symlink), never follows a planted link at a temporary name, gives every writer its
// own temporary file, and leaves no temporary behind on failure (issue 9, items 1 and 2).
#include "blip/io/atomic_write.h"
#include "io/file_io.h"

#include "common/fixtures.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using blip::test::expect_error;
using blip::test::read_bytes;
using blip::test::write_bytes;

// Every `*.tmp.*` in `dir` (the writer's temporaries are `<name>.tmp.<pid>.<n>`).
std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().string());
  return out;
}

mode_t file_type(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & S_IFMT;
}

TEST(AtomicWrite, ReplacesARegularFileAndLeavesNoTemporary) {
  const std::string dir = blip::test::temp_dir();
  const std::string path = dir + "/out.txt";
  blip::io::write_file_atomic(path, "first");
  blip::io::write_file_atomic(path, "second");
  EXPECT_EQ(read_bytes(path), "second");
  EXPECT_TRUE(temporaries(dir).empty());
}

TEST(AtomicWrite, FifoIsRefusedAndLeftAlone) {
  const std::string dir = blip::test::temp_dir();
  const std::string fifo = dir + "/pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  expect_error([&] { blip::io::write_file_atomic(fifo, "data"); },
               {fifo + ": is not a regular file (a FIFO); refusing to replace it"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));  // no blocking open
  EXPECT_EQ(file_type(fifo), S_IFIFO);
  EXPECT_TRUE(temporaries(dir).empty());
  // Reading one does not block either.
  expect_error([&] { blip::io::read_file_if_exists(fifo); }, {fifo, "is not a regular file"});
}

TEST(AtomicWrite, DirectoryAndSymlinkTargetsAreRefused) {
  const std::string dir = blip::test::temp_dir();
  fs::create_directory(dir + "/sub");
  expect_error([&] { blip::io::write_file_atomic(dir + "/sub", "x"); },
               {dir + "/sub: is not a regular file (a directory)"});
  EXPECT_TRUE(fs::is_directory(dir + "/sub"));
  write_bytes(dir + "/victim", "keep me");
  fs::create_symlink(dir + "/victim", dir + "/link");
  expect_error([&] { blip::io::write_file_atomic(dir + "/link", "x"); },
               {dir + "/link: is not a regular file (a symbolic link)"});
  EXPECT_EQ(read_bytes(dir + "/victim"), "keep me");
  EXPECT_EQ(file_type(dir + "/link"), S_IFLNK);
  EXPECT_TRUE(temporaries(dir).empty());
}

// A character device made here (mknod needs CAP_MKNOD) is as good as /dev/null and harmless.
TEST(AtomicWrite, CharacterDeviceIsRefusedAndLeftAlone) {
  const std::string dir = blip::test::temp_dir();
  const std::string dev = dir + "/null";
  if (::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0)
    GTEST_SKIP() << "cannot create a character device here (mknod needs CAP_MKNOD)";
  expect_error([&] { blip::io::write_file_atomic(dev, "data"); },
               {dev + ": is not a regular file (a character device); refusing to replace it"});
  EXPECT_EQ(file_type(dev), S_IFCHR);
  EXPECT_TRUE(temporaries(dir).empty());
}

// Issue 9 item 1: as root, `--out /dev/null` replaced the device with a plain file.
TEST(AtomicWrite, DevNullIsRefusedAndStaysADevice) {
  if (file_type("/dev/null") != S_IFCHR) GTEST_SKIP() << "/dev/null is not a character device here";
  if (::access("/dev/null", W_OK) != 0) GTEST_SKIP() << "/dev/null is not writable here";
  expect_error([] { blip::io::write_file_atomic("/dev/null", "data"); },
               {"/dev/null: is not a regular file (a character device); refusing to replace it"});
  const mode_t after = file_type("/dev/null");
  if (after != S_IFCHR && ::geteuid() == 0) {  // put the device back for everything else here
    ::unlink("/dev/null");
    ::mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3));
    ::chmod("/dev/null", 0666);
  }
  EXPECT_EQ(after, S_IFCHR) << "/dev/null was replaced";
  EXPECT_TRUE(temporaries("/dev").empty());
}

// Issue 9 item 2: a symlink planted where the writer puts its temporary file is never followed.
TEST(AtomicWrite, PlantedSymlinkAtTheTemporaryNameIsNotFollowed) {
  const std::string dir = blip::test::temp_dir();
  const std::string target = dir + "/out.bin";
  const std::string victim = dir + "/victim.txt";
  write_bytes(victim, "precious");
  // Learn this process's next temporary number from a writer that is then abandoned.
  std::string probe_tmp;
  {
    blip::io::detail::AtomicFileWriter probe(dir + "/probe");
    for (const auto& t : temporaries(dir)) probe_tmp = t;
  }
  ASSERT_FALSE(probe_tmp.empty());
  const unsigned next = static_cast<unsigned>(std::stoul(probe_tmp.substr(probe_tmp.rfind('.') + 1))) + 1;
  constexpr unsigned kPlanted = 10;
  std::vector<std::string> links;
  for (unsigned n = next; n < next + kPlanted; ++n) {
    links.push_back(target + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n));
    fs::create_symlink(victim, links.back());
  }
  blip::io::write_file_atomic(target, "new contents");
  EXPECT_EQ(read_bytes(target), "new contents");
  EXPECT_EQ(read_bytes(victim), "precious");
  for (const auto& l : links) EXPECT_EQ(file_type(l), S_IFLNK) << l;
  EXPECT_EQ(temporaries(dir).size(), kPlanted);  // only the planted links: ours was renamed
}

// Two writers of one path (two ranks, a second run) each get their own temporary file.
TEST(AtomicWrite, ConcurrentWritersDoNotShareATemporary) {
  const std::string dir = blip::test::temp_dir();
  const std::string path = dir + "/shared.txt";
  blip::io::detail::AtomicFileWriter a(path);
  blip::io::detail::AtomicFileWriter b(path);
  EXPECT_EQ(temporaries(dir).size(), 2u);
  a.write("aaaa", 4);
  b.write("bb", 2);
  a.commit();
  EXPECT_EQ(read_bytes(path), "aaaa");
  b.commit();
  EXPECT_EQ(read_bytes(path), "bb");
  EXPECT_TRUE(temporaries(dir).empty());
}

TEST(AtomicWrite, TemporaryIsRemovedOnEveryFailure) {
  const std::string dir = blip::test::temp_dir();
  const std::string path = dir + "/out.bin";
  // The target turns into a directory before the commit: refused, temporary removed.
  {
    blip::io::detail::AtomicFileWriter w(path);
    w.write("data", 4);
    fs::create_directory(path);
    expect_error([&] { w.commit(); }, {path, "is not a regular file (a directory)"});
  }
  EXPECT_TRUE(fs::is_directory(path));
  EXPECT_TRUE(temporaries(dir).empty());
  // Abandoned (an exception between construction and commit): removed too.
  {
    blip::io::detail::AtomicFileWriter w(dir + "/other.bin");
    w.write("partial", 7);
  }
  EXPECT_FALSE(fs::exists(dir + "/other.bin"));
  EXPECT_TRUE(temporaries(dir).empty());
  // No parent directory: nothing is created anywhere.
  expect_error([&] { blip::io::write_file_atomic(dir + "/missing/out.bin", "x"); },
               {dir + "/missing/out.bin", "cannot create a temporary file"});
  expect_error([&] { blip::io::write_file_atomic("", "x"); }, {"<empty path>"});
  EXPECT_TRUE(temporaries(dir).empty());
}

TEST(EnsureWritableDirectory, CreatesAndProbes) {
  const std::string dir = blip::test::temp_dir();
  const std::string nested = dir + "/a/b/c";
  blip::io::ensure_writable_directory(nested);
  EXPECT_TRUE(fs::is_directory(nested));
  EXPECT_TRUE(fs::is_empty(nested));  // the probe file is gone
  blip::io::ensure_writable_directory(nested);  // existing: fine
}

TEST(EnsureWritableDirectory, RefusesWhatCannotHoldFiles) {
  const std::string dir = blip::test::temp_dir();
  const std::string file = dir + "/a_file";
  write_bytes(file, "x");
  expect_error([&] { blip::io::ensure_writable_directory(file); }, {file + ": exists and is not a directory"});
  // Below a regular file: creation fails whoever runs it (root ignores permission bits).
  expect_error([&] { blip::io::ensure_writable_directory(file + "/sub"); },
               {file + "/sub: cannot create the directory: Not a directory"});
  EXPECT_EQ(read_bytes(file), "x");
  if (::geteuid() != 0) {  // permission bits stop only non-root users
    const std::string locked = dir + "/locked";
    fs::create_directory(locked);
    fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
    expect_error([&] { blip::io::ensure_writable_directory(locked); }, {locked + ": is not writable"});
    fs::permissions(locked, fs::perms::owner_all);
  }
}

}  // namespace
