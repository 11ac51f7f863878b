// Checkpoint tensors point into a private mapping of the file instead of being copied: the values
// are the file's, writing to a tensor never changes the file, a damaged record fails its CRC, and
// records that cannot be mapped (misaligned) are still read correctly.
#include "blip/io/checkpoint.h"
#include "blip/io/safetensors.h"

#include "common/fixtures.h"
#include "io/test_util.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

using blip::test::expect_error;
using blip::test::read_bytes;
using blip::test::write_bytes;

namespace {

// True when `p` lies in a mapping of the file `path` (from /proc/self/maps).
bool in_mapping_of(const void* p, const std::string& path) {
  const std::string file = std::filesystem::canonical(path).string();
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.size() < file.size() || line.compare(line.size() - file.size(), file.size(), file) != 0) continue;
    std::uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream(line) >> std::hex >> begin >> dash >> end;
    if (addr >= begin && addr < end) return true;
  }
  return false;
}

blip::io::NamedTensors sample_tensors() {
  at::manual_seed(3);
  return {{"w", at::randn({64, 32})}, {"ids", at::arange(100, at::kLong)}, {"h", at::randn({7}).to(at::kHalf)}};
}

void expect_same(const blip::io::NamedTensors& got, const blip::io::NamedTensors& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_TRUE(at::equal(got[i].second, want[i].second)) << want[i].first;
  }
}

TEST(MappedLoad, PthTensorsAreCopyOnWriteViewsOfTheFile) {
  const std::string path = blip::test::temp_dir() + "/mapped.pth";
  const auto tensors = sample_tensors();
  blip::io::save_pth(path, tensors, nlohmann::json::object());
  const std::string bytes = read_bytes(path);
  for (const bool whole_object : {false, true}) {
    blip::io::NamedTensors loaded = whole_object ? blip::io::load_pth(path).model : blip::io::load_model_tensors(path);
    expect_same(loaded, tensors);
    for (const auto& [name, t] : loaded) EXPECT_TRUE(in_mapping_of(t.data_ptr(), path)) << name << " was copied";
    for (auto& [name, t] : loaded) t.add_(1);  // copy-on-write: the file keeps its bytes
    EXPECT_EQ(read_bytes(path), bytes);
    EXPECT_TRUE(at::equal(loaded[0].second, tensors[0].second + 1));
  }
  expect_same(blip::io::load_model_tensors(path), tensors);
}

TEST(MappedLoad, DamagedTensorRecordFailsItsCrc) {
  const std::string path = blip::test::temp_dir() + "/crc_tensor.pth";
  const at::Tensor marked = at::full({16}, 1234.5f);
  blip::io::save_pth(path, {{"marked", marked}}, nlohmann::json::object());
  std::string bytes = read_bytes(path);
  float value = 1234.5f;
  const std::size_t at = bytes.find(std::string(reinterpret_cast<const char*>(&value), sizeof value));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 1] ^= 0x10;
  write_bytes(path, bytes);
  expect_error([&] { blip::io::load_model_tensors(path); }, {path, "data/0", "CRC"});
  expect_error([&] { blip::io::load_pth(path); }, {path, "data/0", "CRC"});
}

// A safetensors file whose F32 tensor starts one byte into the data (after a 1-byte U8 tensor).
std::string misaligned_safetensors(const std::string& path) {
  std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  while ((8 + header.size()) % 8 != 0) header += ' ';
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header;
  bytes += '\x07';
  const float b[2] = {1.5f, -2.25f};
  bytes.append(reinterpret_cast<const char*>(b), sizeof b);
  write_bytes(path, bytes);
  return path;
}

TEST(MappedLoad, SafetensorsMapsAlignedTensorsAndReadsMisalignedOnes) {
  const std::string path = blip::test::temp_dir() + "/mapped.safetensors";
  const auto tensors = sample_tensors();
  blip::io::save_safetensors(path, tensors);
  const std::string bytes = read_bytes(path);
  auto loaded = blip::io::load_safetensors(path);
  ASSERT_EQ(loaded.size(), tensors.size());
  for (auto& [name, t] : loaded) {
    EXPECT_TRUE(in_mapping_of(t.data_ptr(), path)) << name << " was copied";
    for (const auto& [want_name, want] : tensors)
      if (want_name == name) {
        EXPECT_TRUE(at::equal(t, want)) << name;
      }
    t.add_(1);
  }
  EXPECT_EQ(read_bytes(path), bytes);

  const std::string odd = misaligned_safetensors(blip::test::temp_dir() + "/misaligned.safetensors");
  const auto got = blip::io::load_safetensors(odd);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].second.item<std::uint8_t>(), 7);
  EXPECT_TRUE(in_mapping_of(got[0].second.data_ptr(), odd));
  EXPECT_FALSE(in_mapping_of(got[1].second.data_ptr(), odd));  // read into aligned memory
  EXPECT_TRUE(at::equal(got[1].second, at::tensor({1.5f, -2.25f})));
}

}  // namespace
