// The bounded reader for users' small input files: only regular files, never more than the cap,
// never blocking on a FIFO, and every refusal names the file and what it is.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "blip/error.h"
#include "common/expect_error.h"
#include "common/fixtures.h"
#include "core/regular_file.h"

namespace {

using blip::test::expect_error;
namespace files = blip::files;

std::string write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(RegularFile, ReadsAWholeFile) {
  const std::string p = write_text(blip::test::temp_dir() + "/a.txt", "one\ntwo\n");
  EXPECT_EQ(files::read_regular_file(p, 100, "captions file"), "one\ntwo\n");
  EXPECT_EQ(files::read_regular_file(p, 8, "captions file"), "one\ntwo\n");  // exactly the cap
  EXPECT_NO_THROW(files::require_regular_file(p, 8, "captions file"));
}

TEST(RegularFile, RefusalsNameTheFileAndWhatItIs) {
  const std::string dir = blip::test::temp_dir();
  expect_error([&] { files::read_regular_file(dir + "/none.txt", 100, "captions file"); },
               {dir + "/none.txt: captions file not found"});
  expect_error([&] { files::read_regular_file(dir, 100, "vocabulary file"); },
               {dir + ": is a directory, not a vocabulary file"});
  expect_error([&] { files::require_regular_file(dir, 100, "config file"); },
               {dir + ": is a directory, not a config file"});
  const std::string big = write_text(dir + "/big.txt", std::string(9, 'x'));
  expect_error([&] { files::read_regular_file(big, 8, "captions file"); },
               {big + ": is larger than 8 bytes, the limit for a captions file"});
  expect_error([&] { files::require_regular_file(big, 8, "config file"); }, {big, "is larger than 8 bytes"});
  expect_error([&] { files::read_regular_file("", 8, "config file"); }, {"no config file given"});
}

// /dev/zero never ends: without the type check the reader would fill memory.
TEST(RegularFile, CharacterDeviceIsRefusedAtOnce) {
  if (!std::filesystem::exists("/dev/zero")) GTEST_SKIP() << "no /dev/zero here";
  const auto start = std::chrono::steady_clock::now();
  expect_error([] { files::read_regular_file("/dev/zero", std::uint64_t{1} << 40, "captions file"); },
               {"/dev/zero: is not a regular file (a character device); expected a captions file"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// A FIFO without a writer would block a plain open() forever.
TEST(RegularFile, FifoIsRefusedWithoutBlocking) {
  const std::string fifo = blip::test::temp_dir() + "/pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_error([&] { files::read_regular_file(fifo, 100, "vocabulary file"); },
               {fifo + ": is not a regular file (a FIFO); expected a vocabulary file"});
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST(RegularFile, SizeAndTypeTexts) {
  EXPECT_EQ(files::size_text(64 * files::kMiB), "64 MiB");
  EXPECT_EQ(files::size_text(files::kMiB + 1), "1048577 bytes");
  EXPECT_EQ(files::size_text(0), "0 bytes");
  EXPECT_EQ(files::file_type_name(S_IFDIR | 0755), "a directory");
  EXPECT_EQ(files::file_type_name(S_IFCHR | 0666), "a character device");
  EXPECT_EQ(files::file_type_name(S_IFIFO | 0600), "a FIFO");
  EXPECT_EQ(files::file_type_name(S_IFREG | 0644), "a regular file");
}

}  // namespace
