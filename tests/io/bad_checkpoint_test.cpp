// Hostile and broken checkpoint files: each must give a blip::Error naming the file and the
// reason, never a crash, an abort or a non-blip exception.
#include "blip/io/checkpoint.h"
#include "blip/io/safetensors.h"

#include "common/fixtures.h"
#include "io/file_io.h"
#include "io/test_util.h"
#include "io/torch_zip.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <random>

using namespace std::string_literals;
using blip::test::expect_error;
using blip::test::read_bytes;
using blip::test::write_bytes;

namespace {

// A torch.save-style archive with a hand-made data.pkl and raw storage records.
std::string write_archive(const std::string& name, const std::string& pkl,
                          const std::vector<std::pair<std::string, std::string>>& records = {}) {
  const std::string path = blip::test::temp_dir() + "/" + name;
  blip::io::detail::AtomicFileWriter file(path);
  {
    blip::io::detail::TorchZipWriter zip(file);
    zip.write_record("data.pkl", pkl.data(), pkl.size());
    for (const auto& [rec, bytes] : records) zip.write_record(rec, bytes.data(), bytes.size());
    zip.finish();
  }
  file.commit();
  return path;
}

std::string str(const std::string& s) {
  std::string out = "X";
  for (int i = 0; i < 4; ++i) out += static_cast<char>((s.size() >> (8 * i)) & 0xff);
  return out + s;
}

// {'model': {'w': _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel), 0, (rows, 4), (4, 1), False, OrderedDict())}}
std::string model_pickle(int numel, int rows) {
  return "\x80\x02}"s + str("model") + "}" + str("w") + "ctorch._utils\n_rebuild_tensor_v2\n(" + "(" + str("storage") +
         "ctorch\nFloatStorage\n" + str("0") + str("cpu") + "K" + static_cast<char>(numel) + "tQ" + "K\x00"s + "(K" +
         static_cast<char>(rows) + "K\x04t(K\x04K\x01t\x89" + "ccollections\nOrderedDict\n)R" + "tRss.";
}

// Loading must either succeed or throw blip::Error; anything else fails the test.
void load_must_not_crash(const std::string& path) {
  try {
    blip::io::load_model_tensors(path);
  } catch (const blip::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-blip exception for " << path << ": " << e.what();
  }
}

}  // namespace

TEST(BadCheckpoint, HandMadeArchiveLoads) {
  // The control case for the tests below: a well-formed archive built the same way loads.
  std::string data(48, '\0');
  const auto path = write_archive("good.pth", model_pickle(12, 3), {{"data/0", data}});
  const auto t = blip::io::load_model_tensors(path);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].first, "w");
  EXPECT_EQ(t[0].second.sizes(), at::IntArrayRef({3, 4}));
}

TEST(BadCheckpoint, TruncatedPth) {
  BLIP_REQUIRE_FIXTURES();
  const std::string bytes = read_bytes(blip::test::blip_ref_dir() + "/tiny_checkpoint.pth");
  ASSERT_GT(bytes.size(), 100000u);
  const std::vector<std::size_t> cuts = {1, 3, 4, 21, 100, 30000, 59813, 60000, bytes.size() / 2,
                                         bytes.size() - 23, bytes.size() - 22, bytes.size() - 10, bytes.size() - 1};
  const std::string dir = blip::test::temp_dir();
  for (const auto cut : cuts) {
    const std::string path = dir + "/cut_" + std::to_string(cut) + ".pth";
    write_bytes(path, bytes.substr(0, cut));
    SCOPED_TRACE(path);
    if (cut < 4) {
      expect_error([&] { blip::io::load_model_tensors(path); }, {path, "not a checkpoint"});
      expect_error([&] { blip::io::load_pth(path); }, {path, "zip"});
    } else {
      expect_error([&] { blip::io::load_model_tensors(path); }, {path, "truncated"});
    }
  }
}

TEST(BadCheckpoint, CorruptedBytesNeverCrash) {
  // Random byte changes in a small archive: every outcome must be a value or a blip::Error.
  const at::Tensor w = at::arange(12, at::kFloat).view({3, 4});
  const std::string dir = blip::test::temp_dir();
  const std::string good = dir + "/small.pth";
  blip::io::save_pth(good, {{"w", w}, {"b", at::ones({2}, at::kLong)}}, nlohmann::json{{"k", 1}}, 1);
  const std::string bytes = read_bytes(good);
  std::mt19937 rng(1234);
  for (int i = 0; i < 300; ++i) {
    std::string bad = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
    const std::string path = dir + "/corrupt_" + std::to_string(i) + ".pth";
    write_bytes(path, bad);
    load_must_not_crash(path);
    std::filesystem::remove(path);
  }
}

TEST(BadCheckpoint, PickleCallingOsSystem) {
  const std::string marker = blip::test::temp_dir() + "/pwned";
  const std::string pkl = "\x80\x02"s + "cos\nsystem\n" + str("touch " + marker) + "\x85R.";
  const auto path = write_archive("evil.pth", pkl);
  expect_error([&] { blip::io::load_pth(path); }, {path, "global 'os.system' is not allowed"});
  expect_error([&] { blip::io::load_model_tensors(path); }, {path, "os.system"});
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(BadCheckpoint, StorageSmallerThanShape) {
  // The pickle declares 12 floats and a (4, 4) view: 16 needed.
  const auto p1 = write_archive("short_view.pth", model_pickle(12, 4), {{"data/0", std::string(48, '\0')}});
  expect_error([&] { blip::io::load_pth(p1); }, {p1, "exceeds its storage of 12 elements"});
  // The record holds fewer bytes than the pickle declares.
  const auto p2 = write_archive("short_record.pth", model_pickle(12, 3), {{"data/0", std::string(40, '\0')}});
  expect_error([&] { blip::io::load_pth(p2); }, {p2, "'data/0' holds 40 bytes", "48 bytes"});
}

TEST(BadCheckpoint, MissingStorageRecord) {
  const auto path = write_archive("no_record.pth", model_pickle(12, 3));
  expect_error([&] { blip::io::load_pth(path); }, {path, "'data/0' is missing"});
}

TEST(BadCheckpoint, ArchiveWithoutPickle) {
  const std::string path = blip::test::temp_dir() + "/nopkl.pth";
  {
    blip::io::detail::AtomicFileWriter file(path);
    blip::io::detail::TorchZipWriter zip(file);
    zip.write_record("something", "x", 1);
    zip.finish();
    file.commit();
  }
  expect_error([&] { blip::io::load_pth(path); }, {path, "no data.pkl"});
}

TEST(BadCheckpoint, ModelEntryNotTensors) {
  const std::string pkl = "\x80\x02}"s + str("model") + "}" + str("w") + str("text") + "ss.";
  const auto path = write_archive("str_model.pth", pkl);
  expect_error([&] { blip::io::load_pth(path); }, {path, "'w' is a str, not a tensor"});
  const auto top = write_archive("list.pth", "\x80\x02]."s);
  expect_error([&] { blip::io::load_pth(top); }, {top, "list, not a dict"});
}

TEST(BadCheckpoint, NotACheckpointAtAll) {
  const std::string dir = blip::test::temp_dir();
  const std::string text = dir + "/notes.pth";
  write_bytes(text, "just some text, not a checkpoint at all\n");
  expect_error([&] { blip::io::load_model_tensors(text); }, {text, "neither a torch.save zip archive"});
  expect_error([&] { blip::io::load_pth(text); }, {text, "not a zip archive"});
  expect_error([&] { blip::io::load_safetensors(text); }, {text});

  const std::string empty = dir + "/empty.pth";
  write_bytes(empty, "");
  expect_error([&] { blip::io::load_model_tensors(empty); }, {empty, "empty"});
  expect_error([&] { blip::io::load_pth(empty); }, {empty, "too small"});

  const std::string legacy = dir + "/legacy.pth";
  write_bytes(legacy, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."s);
  expect_error([&] { blip::io::load_model_tensors(legacy); }, {legacy, "legacy"});

  const std::string missing = dir + "/missing.pth";
  expect_error([&] { blip::io::load_model_tensors(missing); }, {missing, "cannot open"});
  expect_error([&] { blip::io::load_pth(missing); }, {missing, "cannot open"});
  expect_error([&] { blip::io::load_model_tensors(dir); }, {dir, "directory"});
}

TEST(BadCheckpoint, ZipClaimingHugeRecord) {
  // A stored entry whose central directory claims 2^40 bytes: rejected before LibTorch allocates.
  std::string bytes = read_bytes(write_archive("huge.pth", model_pickle(12, 3), {{"data/0", std::string(48, '\0')}}));
  const std::size_t cd = bytes.rfind("PK\x01\x02"s);  // last central-directory entry (version)
  ASSERT_NE(cd, std::string::npos);
  for (int off : {20, 24}) {  // compressed and uncompressed size -> 0xffffffff without zip64 data
    for (int i = 0; i < 4; ++i) bytes[cd + off + i] = '\xff';
  }
  const std::string path = blip::test::temp_dir() + "/huge_edit.pth";
  write_bytes(path, bytes);
  expect_error([&] { blip::io::load_pth(path); }, {path, "zip"});
}

TEST(BadCheckpoint, VersionRecordProblems) {
  const std::string good = read_bytes(write_archive("v.pth", model_pickle(12, 3), {{"data/0", std::string(48, '\0')}}));
  const auto edit = [&](const std::string& name, const std::string& from, const std::string& to, bool all) {
    std::string bytes = good;
    for (std::size_t at = bytes.find(from); at != std::string::npos; at = bytes.find(from, at + 1)) {
      bytes.replace(at, from.size(), to);
      if (!all) break;
    }
    const std::string path = blip::test::temp_dir() + "/" + name;
    write_bytes(path, bytes);
    return path;
  };
  // Renamed in the local header and the central directory: no version record at all.
  const auto none = edit("noversion.pth", "archive/version", "archive/versioX", true);
  expect_error([&] { blip::io::load_pth(none); }, {none, "no 'archive/version' record"});
  // Content changed ("3\n" -> "4\n"): the CRC no longer matches.
  const std::size_t at = good.rfind("archive/version");
  std::string bytes = good;
  const std::size_t data = good.find("3\n", good.find("archive/version"));
  ASSERT_NE(data, std::string::npos);
  ASSERT_LT(data, at);
  bytes[data] = '4';
  const std::string crc = blip::test::temp_dir() + "/badcrc.pth";
  write_bytes(crc, bytes);
  expect_error([&] { blip::io::load_pth(crc); }, {crc, "CRC"});
}

// Inputs found by fuzz_pth that got past the structure check into LibTorch's reader (which then
// threw from its constructor, leaking, or returned an unwritten buffer). Each is now refused first.
TEST(BadCheckpoint, FuzzFindingsAreRefusedBeforeLibTorch) {
  const std::string good = read_bytes(write_archive("f.pth", model_pickle(12, 3), {{"data/0", std::string(48, '\0')}}));
  const std::size_t version_cd = good.rfind("PK\x01\x02"s);  // central-directory entry of 'archive/version'
  const std::size_t zip64 = good.rfind("PK\x06\x06"s);
  ASSERT_NE(version_cd, std::string::npos);
  ASSERT_NE(zip64, std::string::npos);
  const auto variant = [&](const std::string& name, std::size_t at, const std::string& bytes) {
    std::string b = good;
    b.replace(at, bytes.size(), bytes);
    const std::string path = blip::test::temp_dir() + "/" + name;
    write_bytes(path, b);
    return path;
  };
  const auto dir = variant("dirattr.pth", version_cd + 38, "\x10\x00\x00\x00"s);  // DOS directory attribute
  expect_error([&] { blip::io::load_pth(dir); }, {dir, "marked as a directory"});
  const auto enc = variant("encrypted.pth", version_cd + 8, "\x40\x00"s);  // strong-encryption flag
  expect_error([&] { blip::io::load_pth(enc); }, {enc, "encryption"});
  const auto empty64 = variant("zip64zero.pth", zip64 + 24, std::string(16, '\0'));  // zip64 record: 0 entries
  expect_error([&] { blip::io::load_pth(empty64); }, {empty64, "holds no records"});
}

TEST(BadCheckpoint, ModelLoadingReadsOnlyModelStorages) {
  // {'model': {'w': <storage '0'>}, 'optimizer': {'m': <storage '1'>}} with record data/1 absent:
  // load_model_tensors never reads the optimizer's storage, load_pth does and reports it.
  std::string pkl = model_pickle(12, 3);
  pkl.pop_back();  // '.'
  pkl.pop_back();  // the top-level 's'
  std::string opt = model_pickle(12, 3).substr(3);  // from "X...model" on
  opt.replace(opt.find("model"), 5, "optim");
  opt.replace(opt.find("X\x01\x00\x00\x00" "0"s), 6, "X\x01\x00\x00\x00" "1"s);
  const std::string two = pkl + "s" + opt;  // the second entry is set on the same top-level dict
  const auto path = write_archive("lazy.pth", two, {{"data/0", std::string(48, '\x01')}});
  const auto model = blip::io::load_model_tensors(path);
  ASSERT_EQ(model.size(), 1u);
  EXPECT_EQ(model[0].second.sizes(), at::IntArrayRef({3, 4}));
  expect_error([&] { blip::io::load_pth(path); }, {path, "'data/1' is missing"});
}
