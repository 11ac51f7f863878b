#include "blip/io/safetensors.h"

#include "common/fixtures.h"
#include "io/test_util.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>

using blip::io::NamedTensors;
using blip::test::expect_error;
using blip::test::write_bytes;

namespace {

const at::Tensor& find(const NamedTensors& t, const std::string& name) {
  for (const auto& [n, v] : t)
    if (n == name) return v;
  throw std::runtime_error("no tensor " + name);
}

// A complete safetensors file from a header string and a data buffer.
std::string make_file(const std::string& header, const std::string& data, std::uint64_t declared_len = ~0ull) {
  const std::uint64_t n = declared_len == ~0ull ? header.size() : declared_len;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

std::string tmp_file(const std::string& name, const std::string& bytes) {
  const std::string path = blip::test::temp_dir() + "/" + name;
  write_bytes(path, bytes);
  return path;
}

}  // namespace

TEST(Safetensors, LoadsForwardFixture) {
  BLIP_REQUIRE_FIXTURES();
  std::map<std::string, std::string> meta;
  const auto tensors = blip::io::load_safetensors(blip::test::blip_ref_dir() + "/forward.safetensors", &meta);
  ASSERT_EQ(tensors.size(), 24u);  // 25 header keys, one of which is __metadata__
  EXPECT_EQ(meta.at("seed"), "0");
  EXPECT_EQ(meta.at("blip_commit"), "056a169437371659074aa2732649d5de3bffb4a8");
  // Values read with numpy from the raw bytes.
  const auto& image = find(tensors, "image");
  ASSERT_EQ(image.sizes(), at::IntArrayRef({4, 3, 64, 64}));
  EXPECT_EQ(image.scalar_type(), at::kFloat);
  EXPECT_FLOAT_EQ(image.view(-1)[0].item<float>(), -1.2813175916671753f);
  EXPECT_FLOAT_EQ(image.view(-1)[3].item<float>(), -1.1353334188461304f);
  EXPECT_NEAR(image.to(at::kDouble).sum().item<double>(), -2894.6905510026263, 1e-9);
  const auto& ids = find(tensors, "text.input_ids");
  EXPECT_EQ(ids.scalar_type(), at::kLong);
  EXPECT_EQ(ids.sizes(), at::IntArrayRef({6, 35}));
  EXPECT_EQ(ids[0][0].item<int64_t>(), 101);
  EXPECT_EQ(ids[0][1].item<int64_t>(), 1037);
  EXPECT_EQ(ids.sum().item<int64_t>(), 574537);
  // Loaded in file order: the first tensor's bytes come first.
  EXPECT_EQ(tensors[0].first, "itm.input_ids");
}

TEST(Safetensors, LoadsTrainStepFixture) {
  BLIP_REQUIRE_FIXTURES();
  const auto tensors = blip::io::load_safetensors(blip::test::blip_ref_dir() + "/train_step.safetensors");
  EXPECT_EQ(tensors.size(), 126u);
  const auto& temp = find(tensors, "before.temp");
  EXPECT_EQ(temp.dim(), 0);
  EXPECT_FLOAT_EQ(temp.item<float>(), 0.050099752843379974f);
  EXPECT_EQ(find(tensors, "before.ptr_queue").item<int64_t>(), 60);
  EXPECT_EQ(find(tensors, "before.idx_queue").sum().item<int64_t>(), -2070);
}

TEST(Safetensors, RoundTripsEveryDtypeBitwise) {
  NamedTensors in;
  in.emplace_back("z.f64", at::randn({3, 5}, at::kDouble));
  in.emplace_back("a.f32", at::randn({2, 3, 4}));
  in.emplace_back("f16", at::randn({7}).to(at::kHalf));
  in.emplace_back("bf16", at::randn({2, 2}).to(at::kBFloat16));
  in.emplace_back("i64", at::randint(-1000000, 1000000, {9}, at::kLong));
  in.emplace_back("i32", at::randint(-1000, 1000, {3, 1}, at::kInt));
  in.emplace_back("i16", at::randint(-1000, 1000, {5}, at::kShort));
  in.emplace_back("i8", at::randint(-100, 100, {5}, at::kChar));
  in.emplace_back("u8", at::randint(0, 255, {2, 2, 2}, at::kByte));
  in.emplace_back("bool", at::randint(0, 2, {6}, at::kLong).to(at::kBool));
  in.emplace_back("scalar", at::scalar_tensor(3.5));
  in.emplace_back("empty", at::empty({0, 4}));
  in.emplace_back("transposed", at::randn({4, 6}).t());        // not contiguous
  in.emplace_back("strided", at::arange(20, at::kFloat).slice(0, 1, 20, 3));
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "héllo"}};

  const std::string path = blip::test::temp_dir() + "/all.safetensors";
  blip::io::save_safetensors(path, in, meta);
  EXPECT_FALSE(blip::test::temp_sibling_left(path));
  std::map<std::string, std::string> meta_out;
  const auto out = blip::io::load_safetensors(path, &meta_out);
  EXPECT_EQ(meta_out, meta);
  ASSERT_EQ(out.size(), in.size());
  for (const auto& [name, t] : in) {
    const auto& u = find(out, name);
    EXPECT_EQ(u.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(u.sizes(), t.sizes()) << name;
    EXPECT_TRUE(u.is_contiguous()) << name;
    EXPECT_TRUE(at::equal(u, t)) << name;
  }

  // Layout: header padded to 8 bytes with spaces; tensors by decreasing alignment, then name.
  const std::string bytes = blip::test::read_bytes(path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const auto header = nlohmann::ordered_json::parse(bytes.substr(8, n));
  EXPECT_EQ(header.begin().key(), "__metadata__");
  EXPECT_EQ(bytes[8 + n - 1] == ' ' || bytes[8 + n - 1] == '}', true);
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    const auto begin = info["data_offsets"][0].get<std::uint64_t>();
    const auto& t = find(in, name);
    EXPECT_EQ(begin % t.element_size(), 0u) << name << " is not aligned";
  }
  std::vector<std::string> order;
  for (const auto& [name, t] : out) order.push_back(name);
  EXPECT_EQ(order.front(), "i64");  // 8-byte dtypes first, by name: i64 < z.f64
  EXPECT_EQ(order[1], "z.f64");

  // The in-memory serialisation gives the same bytes, and parses the same.
  EXPECT_EQ(blip::io::serialize_safetensors(in, meta), bytes);
  const auto parsed = blip::io::parse_safetensors(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                                  bytes.size(), "mem");
  ASSERT_EQ(parsed.size(), out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(parsed[i].first, out[i].first);
    EXPECT_TRUE(at::equal(parsed[i].second, out[i].second));
  }
}

TEST(Safetensors, RoundTripsFixtureBitwise) {
  BLIP_REQUIRE_FIXTURES();
  std::map<std::string, std::string> meta;
  const auto in = blip::io::load_safetensors(blip::test::blip_ref_dir() + "/forward.safetensors", &meta);
  const std::string path = blip::test::temp_dir() + "/forward_copy.safetensors";
  blip::io::save_safetensors(path, in, meta);
  std::map<std::string, std::string> meta2;
  const auto out = blip::io::load_safetensors(path, &meta2);
  EXPECT_EQ(meta, meta2);
  ASSERT_EQ(out.size(), in.size());
  for (const auto& [name, t] : in) EXPECT_TRUE(at::equal(find(out, name), t)) << name;
}

TEST(Safetensors, EmptyHeaderIsValid) {
  const auto path = tmp_file("empty_header.safetensors", make_file("{}      ", ""));
  EXPECT_TRUE(blip::io::load_safetensors(path).empty());
}

TEST(Safetensors, WriterRejectsWhatTheFormatCannotHold) {
  const std::string path = blip::test::temp_dir() + "/bad_write.safetensors";
  expect_error([&] { blip::io::save_safetensors(path, {{"c", at::randn({2}, at::kComplexFloat)}}); },
               {path, "'c'", "cannot store"});
  expect_error([&] { blip::io::save_safetensors(path, {{"a", at::ones({1})}, {"a", at::ones({1})}}); },
               {path, "'a'", "twice"});
  expect_error([&] { blip::io::save_safetensors(path, {{"__metadata__", at::ones({1})}}); }, {path, "__metadata__"});
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(blip::test::temp_sibling_left(path));
}

// --- bad input: each gives a blip::Error naming the file and the reason -------------------------

TEST(SafetensorsBadInput, MissingFile) {
  const std::string path = blip::test::temp_dir() + "/does_not_exist.safetensors";
  expect_error([&] { blip::io::load_safetensors(path); }, {path, "cannot open"});
}

TEST(SafetensorsBadInput, EmptyAndTinyFiles) {
  const auto empty = tmp_file("empty.safetensors", "");
  expect_error([&] { blip::io::load_safetensors(empty); }, {empty, "too small"});
  const auto tiny = tmp_file("tiny.safetensors", "abc");
  expect_error([&] { blip::io::load_safetensors(tiny); }, {tiny, "too small"});
}

TEST(SafetensorsBadInput, HeaderLengthOverLimit) {
  const auto path = tmp_file("huge_header.safetensors", make_file("{}", "", 100'000'001));
  expect_error([&] { blip::io::load_safetensors(path); }, {path, "exceeds the limit"});
  const auto max = tmp_file("max_header.safetensors", make_file("{}", "", ~1ull));
  expect_error([&] { blip::io::load_safetensors(max); }, {max, "exceeds the limit"});
}

TEST(SafetensorsBadInput, HeaderPastEndOfFile) {
  const auto path = tmp_file("short.safetensors", make_file("{}", "", 1000));
  expect_error([&] { blip::io::load_safetensors(path); }, {path, "past the end"});
}

TEST(SafetensorsBadInput, HeaderNotJson) {
  const auto path = tmp_file("notjson.safetensors", make_file("{this is not json}", ""));
  expect_error([&] { blip::io::load_safetensors(path); }, {path, "not valid UTF-8 JSON"});
  const auto arr = tmp_file("array.safetensors", make_file("[1, 2]", ""));
  expect_error([&] { blip::io::load_safetensors(arr); }, {arr, "not a JSON object"});
  const auto utf = tmp_file("utf8.safetensors", make_file("{\"\xff\xfe\": 1}", ""));
  expect_error([&] { blip::io::load_safetensors(utf); }, {utf, "UTF-8"});
  std::string deep = "{\"a\":" + std::string(1000, '[') + std::string(1000, ']') + "}";
  const auto nested = tmp_file("nested.safetensors", make_file(deep, ""));
  expect_error([&] { blip::io::load_safetensors(nested); }, {nested, "deeper"});
}

TEST(SafetensorsBadInput, NotSafetensorsAtAll) {
  const auto path = tmp_file("text.safetensors", "hello world, this is a plain text file\n");
  expect_error([&] { blip::io::load_safetensors(path); }, {path});
}

TEST(SafetensorsBadInput, OverlappingOffsets) {
  const std::string h =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  const auto path = tmp_file("overlap.safetensors", make_file(h, std::string(12, '\0')));
  expect_error([&] { blip::io::load_safetensors(path); }, {path, "'b'", "overlap"});
}

TEST(SafetensorsBadInput, GapAndTrailingBytes) {
  const std::string gap =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  const auto p1 = tmp_file("gap.safetensors", make_file(gap, std::string(12, '\0')));
  expect_error([&] { blip::io::load_safetensors(p1); }, {p1, "gap"});
  const std::string one = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const auto p2 = tmp_file("trailing.safetensors", make_file(one, std::string(9, '\0')));
  expect_error([&] { blip::io::load_safetensors(p2); }, {p2, "covers 4 bytes", "9 data bytes"});
  const auto p3 = tmp_file("truncated_data.safetensors", make_file(one, std::string(2, '\0')));
  expect_error([&] { blip::io::load_safetensors(p3); }, {p3, "covers 4 bytes", "2 data bytes"});
}

TEST(SafetensorsBadInput, ShapeDoesNotMatchSpan) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})";
  const auto path = tmp_file("span.safetensors", make_file(h, std::string(8, '\0')));
  expect_error([&] { blip::io::load_safetensors(path); }, {path, "'a'", "needs 12"});
}

TEST(SafetensorsBadInput, ShapeOverflow) {
  const std::string h =
      R"({"a":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}})";
  const auto path = tmp_file("overflow.safetensors", make_file(h, ""));
  expect_error([&] { blip::io::load_safetensors(path); }, {path, "'a'", "overflows"});
  const std::string h2 = R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})";
  const auto p2 = tmp_file("overflow2.safetensors", make_file(h2, ""));
  expect_error([&] { blip::io::load_safetensors(p2); }, {p2, "'a'", "overflows the byte size"});
}

TEST(SafetensorsBadInput, BadFields) {
  struct Case {
    std::string header, needle;
  };
  const std::vector<Case> cases = {
      {R"({"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", "unsupported dtype 'F99'"},
      {R"({"a":{"shape":[1],"data_offsets":[0,4]}})", "'dtype'"},
      {R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", "'shape'"},
      {R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "non-negative integer"},
      {R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "non-negative integer"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "data_offsets"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "before begin"},
      {R"({"a":[1,2]})", "JSON object"},
      {R"({"__metadata__":{"k":1}})", "not a string"},
      {R"({"__metadata__":[]})", "__metadata__"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
       "twice"},
  };
  int i = 0;
  for (const auto& c : cases) {
    const auto path = tmp_file("field" + std::to_string(i++) + ".safetensors", make_file(c.header, std::string(4, '\0')));
    expect_error([&] { blip::io::load_safetensors(path); }, {path, c.needle});
  }
}

TEST(SafetensorsBadInput, BoolBytesMustBeZeroOrOne) {
  const std::string h = R"({"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})";
  const auto path = tmp_file("bool.safetensors", make_file(h, std::string("\x01\x07", 2)));
  expect_error([&] { blip::io::load_safetensors(path); }, {path, "'a'", "byte value 7"});
}

TEST(SafetensorsBadInput, InMemoryParserNamesWhat) {
  const std::string bytes = make_file("{nope", "");
  expect_error([&] {
    blip::io::parse_safetensors(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "buffer#1");
  }, {"buffer#1", "JSON"});
}
