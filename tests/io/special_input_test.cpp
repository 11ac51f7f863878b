// A directory, device or FIFO given where a checkpoint is expected: one error that says what it
// is, at once (a FIFO must not block the open, /dev/zero must not be read). Issue 9, item 6.
#include "blip/io/checkpoint.h"
#include "blip/io/safetensors.h"

#include "common/fixtures.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

namespace {

using blip::test::expect_error;

TEST(SpecialInput, DirectoryAsCheckpoint) {
  const std::string dir = blip::test::temp_dir();
  expect_error([&] { blip::io::load_model_tensors(dir); }, {dir + ": is a directory"});
  expect_error([&] { blip::io::load_pth(dir); }, {dir + ": is a directory"});
  expect_error([&] { blip::io::load_safetensors(dir); }, {dir + ": is a directory"});
  EXPECT_EQ(blip::io::sniff_checkpoint_format(dir), blip::io::CheckpointFormat::Unknown);
}

TEST(SpecialInput, DeviceAsCheckpoint) {
  if (!std::filesystem::exists("/dev/zero")) GTEST_SKIP() << "no /dev/zero here";
  expect_error([] { blip::io::load_model_tensors("/dev/zero"); },
               {"/dev/zero: is not a regular file (a character device)"});
  expect_error([] { blip::io::load_safetensors("/dev/zero"); },
               {"/dev/zero: is not a regular file (a character device)"});
}

TEST(SpecialInput, FifoAsCheckpointDoesNotBlock) {
  const std::string fifo = blip::test::temp_dir() + "/ckpt.pth";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(blip::io::sniff_checkpoint_format(fifo), blip::io::CheckpointFormat::Unknown);
  expect_error([&] { blip::io::load_model_tensors(fifo); }, {fifo + ": is not a regular file (a FIFO)"});
  expect_error([&] { blip::io::load_pth(fifo); }, {fifo + ": is not a regular file (a FIFO)"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
