// The restricted unpickler on hand-written pickles, and the pickler's output read back.
#include "blip/io/pickle.h"

#include "io/test_util.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>

namespace pk = blip::io::pickle;
using namespace std::string_literals;
using blip::test::expect_error;

namespace {

// Storages for hand-written pickles: key "k<n>" is n floats 0, 1, 2, ...
at::Storage arange_storage(const std::string& key, at::ScalarType dtype, std::int64_t numel) {
  at::Tensor t = at::arange(numel, at::TensorOptions().dtype(at::kDouble)).to(dtype);
  return t.storage();
}

pk::Value load(const std::string& bytes, const pk::StorageLoader& loader = arange_storage) {
  return pk::unpickle(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "test.pkl", loader);
}

// A few pickle fragments.
std::string binint1(int v) { return std::string("K") + static_cast<char>(v); }
std::string str(const std::string& s) {
  std::string out = "X";
  const auto n = static_cast<std::uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out + s;
}
const std::string kProto2 = "\x80\x02";
std::string global(const std::string& module, const std::string& name) { return "c" + module + "\n" + name + "\n"; }
// _rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
std::string tensor(const std::string& key, int numel, int offset, const std::vector<int>& size,
                   const std::vector<int>& stride) {
  std::string s = global("torch._utils", "_rebuild_tensor_v2") + "(";
  s += "(" + str("storage") + global("torch", "FloatStorage") + str(key) + str("cpu") + binint1(numel) + "tQ";
  s += binint1(offset) + "(";
  for (int v : size) s += binint1(v);
  s += "t(";
  for (int v : stride) s += binint1(v);
  s += "t\x89" + global("collections", "OrderedDict") + ")R" + "tR";
  return s;
}

}  // namespace

TEST(Unpickle, ScalarsAndContainers) {
  // {'a': [1, -2, 3.5, None, True], (1, 'x'): 'y', 2: b'\x00\xff', 'big': 2**40, 'neg': -2**40}
  std::string p = kProto2 + "}q\x00("s + str("a") + "]q\x01(" + binint1(1) + "J\xfe\xff\xff\xff" +
                  "G\x40\x0c\x00\x00\x00\x00\x00\x00"s + "N\x88" + "e" + binint1(1) + str("x") + "\x86" + str("y") +
                  binint1(2) + "C\x02" + std::string("\x00\xff", 2) + str("big") + "\x8a\x06" +
                  std::string("\x00\x00\x00\x00\x00\x01", 6) + str("neg") + "\x8a\x06" +
                  std::string("\x00\x00\x00\x00\x00\xff", 6) + "u.";
  const pk::Value v = load(p);
  ASSERT_TRUE(v.is_dict());
  const auto* a = v.get("a");
  ASSERT_TRUE(a && a->is_list());
  ASSERT_EQ(a->items().size(), 5u);
  EXPECT_EQ(a->items()[0].as_int(), 1);
  EXPECT_EQ(a->items()[1].as_int(), -2);
  EXPECT_DOUBLE_EQ(a->items()[2].as_double(), 3.5);
  EXPECT_TRUE(a->items()[3].is_none());
  EXPECT_TRUE(a->items()[4].as_bool());
  const auto* y = v.as_dict().find(pk::Value::tuple({pk::Value::integer(1), pk::Value::string("x")}));
  ASSERT_TRUE(y);
  EXPECT_EQ(y->as_string(), "y");
  ASSERT_TRUE(v.get(2));
  EXPECT_EQ(v.get(2)->as_bytes(), std::string("\x00\xff", 2));
  EXPECT_EQ(v.get("big")->as_int(), std::int64_t{1} << 40);
  EXPECT_EQ(v.get("neg")->as_int(), -(std::int64_t{1} << 40));
  // Python key equality: 2 == 2.0 == True-ish ints.
  EXPECT_TRUE(v.as_dict().find(pk::Value::real(2.0)));
  const auto j = pk::to_json(v);
  EXPECT_EQ(j["a"][2], 3.5);
  EXPECT_EQ(j["(1, 'x')"], "y");
}

TEST(Unpickle, MemoSharesContainers) {
  // l = [1]; (l, l) -> both tuple items are the same list object
  const std::string p = kProto2 + "]q\x05" + binint1(1) + "a" + "h\x05" + "\x86.";
  const pk::Value v = load(p);
  ASSERT_TRUE(v.is_tuple());
  EXPECT_EQ(v.items()[0].container_id(), v.items()[1].container_id());
}

TEST(Unpickle, TensorsSharingAStorageAreViews) {
  // Two views of one 12-float storage: a (3,4) matrix and its column 1 as a strided (3,) view at offset 1.
  const std::string p = kProto2 + "(" + tensor("k0", 12, 0, {3, 4}, {4, 1}) + tensor("k0", 12, 1, {3}, {4}) + "t.";
  int loads = 0;
  const pk::Value v = load(p, [&](const std::string& key, at::ScalarType dtype, std::int64_t numel) {
    ++loads;
    EXPECT_EQ(key, "k0");
    EXPECT_EQ(dtype, at::kFloat);
    return arange_storage(key, dtype, numel);
  });
  EXPECT_EQ(loads, 1);
  const at::Tensor m = v.items()[0].as_tensor();
  const at::Tensor c = v.items()[1].as_tensor();
  EXPECT_TRUE(at::equal(m, at::arange(12, at::kFloat).view({3, 4})));
  EXPECT_TRUE(at::equal(c, m.select(1, 1)));
  EXPECT_EQ(c.stride(0), 4);
  m.fill_(7);  // shared memory, as in PyTorch
  EXPECT_EQ(c.sum().item<float>(), 21.f);
}

TEST(Unpickle, ForbiddenGlobalsAreRefused) {
  // The classic exploit: os.system('echo pwned') through REDUCE.
  const std::string p = kProto2 + global("os", "system") + str("echo pwned > /tmp/blip_pwned") + "\x85R.";
  expect_error([&] { load(p); }, {"test.pkl", "os.system", "not allowed"});
  expect_error([&] { load(kProto2 + global("builtins", "eval") + str("1") + "\x85R."); }, {"builtins.eval"});
  expect_error([&] { load(kProto2 + str("posix") + str("system") + "\x93."); }, {"posix.system"});
  expect_error([&] { load(kProto2 + global("torch", "load") + "."); }, {"torch.load"});
}

TEST(Unpickle, UnsupportedOpcodesAreRefused) {
  expect_error([&] { load("(ios\nsystem\n."); }, {"test.pkl", "INST", "not supported"});
  expect_error([&] { load(kProto2 + "\x82\x01."); }, {"EXT1"});
  expect_error([&] { load(kProto2 + "\xff."); }, {"0xff"});
  expect_error([&] { load("\x80\x07N."); }, {"protocol 7"});
}

TEST(Unpickle, StructuralErrors) {
  expect_error([&] { load(kProto2 + "a."); }, {"test.pkl", "stack underflow"});
  expect_error([&] { load(kProto2 + "h\x09."); }, {"memo index 9"});
  expect_error([&] { load(kProto2 + "N"); }, {"without a STOP"});
  expect_error([&] { load(""); }, {"without a STOP"});
  expect_error([&] { load(kProto2 + "X\xff\xff\x00\x00" "abc."s); }, {"string needs 65535 bytes but only 4 remain"});
  expect_error([&] { load(kProto2 + "NN."); }, {"2 values on the stack"});
  expect_error([&] { load(kProto2 + "e."); }, {"no MARK"});
  expect_error([&] { load(kProto2 + "(N."); }, {"unclosed MARK"});
  expect_error([&] { load(kProto2 + "}]N" + "s."); }, {"not hashable"});
  expect_error([&] { load(kProto2 + "\x8a\x09" + std::string(9, '\x7f') + "."); }, {"does not fit in 64 bits"});
  expect_error([&] { load(kProto2 + global("collections", "OrderedDict") + "NR."); }, {"must be a tuple"});
}

TEST(Unpickle, DepthAndCyclesAreBounded) {
  // 100000 nested 1-tuples: far deeper than the limit, must fail without recursing.
  const std::string deep = kProto2 + "N" + std::string(100000, '\x85') + ".";
  expect_error([&] { load(deep); }, {"test.pkl", "deeper than 100"});
  // A list that contains itself: l = []; l.append(l)
  expect_error([&] { load(kProto2 + "]q\x00h\x00" "a."s); }, {"reference cycle"});
  // Exactly at the limit is fine.
  EXPECT_NO_THROW(load(kProto2 + "N" + std::string(100, '\x85') + "."));
}

// Dict keys made of memoized parts are small in the file but hashed in full: their total is
// bounded by 16 bytes per pickle byte plus 4 MiB, so that a small file cannot keep the loader busy.
TEST(Unpickle, KeyHashingIsBounded) {
  // s = 'x' * 100000 (memo 0); {(i, s, s, s, s, s, s, s, s, s): None for i in range(n)}: ~0.9 MB per key.
  auto dict_of_keys = [](int n) {
    std::string p = kProto2 + str(std::string(100000, 'x')) + "q\x00"s + "0}(";
    for (int i = 0; i < n; ++i) {
      p += "(" + binint1(i);
      for (int r = 0; r < 9; ++r) p += "h\x00"s;
      p += "tN";
    }
    return p + "u.";
  };
  EXPECT_EQ(load(dict_of_keys(4)).as_dict().size(), 4u);  // 3.6 MB of keys: within 16 x 100 KB + 4 MiB
  expect_error([&] { load(dict_of_keys(20)); }, {"test.pkl", "dict keys exceed the hashing budget"});
}

TEST(Unpickle, TensorBoundsAreChecked) {
  // Storage of 12 floats; a (4,4) view needs 16.
  expect_error([&] { load(kProto2 + tensor("k0", 12, 0, {4, 4}, {4, 1}) + "."); },
               {"test.pkl", "exceeds its storage of 12 elements"});
  // Offset pushes a valid shape out of range.
  expect_error([&] { load(kProto2 + tensor("k0", 12, 1, {3, 4}, {4, 1}) + "."); }, {"reaching element 12"});
  // Mismatched size / stride lengths.
  expect_error([&] { load(kProto2 + tensor("k0", 12, 0, {3, 4}, {4}) + "."); }, {"differ in length"});
  // Loader returning less than declared.
  expect_error([&] {
    load(kProto2 + tensor("k0", 12, 0, {3}, {1}) + ".",
         [](const std::string&, at::ScalarType dtype, std::int64_t) { return arange_storage("", dtype, 2); });
  }, {"holds 8 bytes but the pickle declares 48"});
  // The same key used with another size.
  expect_error([&] { load(kProto2 + "(" + tensor("k0", 12, 0, {3}, {1}) + tensor("k0", 10, 0, {3}, {1}) + "t."); },
               {"two different types or sizes"});
  // Persistent ids that are not storages.
  expect_error([&] { load(kProto2 + str("x") + "Q."); }, {"persistent id"});
}

TEST(Pickle, RoundTripThroughOwnReader) {
  pk::Value d = pk::Value::dict(true);
  auto& dict = d.mutable_dict();
  const at::Tensor t = at::randn({3, 5});
  dict.set(pk::Value::string("t"), pk::Value::tensor(t.t()));  // non-contiguous: stored contiguous
  dict.set(pk::Value::string("i"), pk::Value::tensor(at::randint(-5, 5, {4}, at::kLong)));
  dict.set(pk::Value::string("ints"), pk::Value::list({pk::Value::integer(0), pk::Value::integer(255),
                                                        pk::Value::integer(256), pk::Value::integer(65536),
                                                        pk::Value::integer(-1), pk::Value::integer(INT64_MIN),
                                                        pk::Value::integer(INT64_MAX)}));
  dict.set(pk::Value::integer(7), pk::Value::tuple({pk::Value::real(1e-8), pk::Value::bytes(std::string("\x00\xe9", 2)),
                                                    pk::Value::none(), pk::Value::boolean(false)}));
  const pk::Value shared = pk::Value::list({pk::Value::string("s")});
  dict.set(pk::Value::string("a"), shared);
  dict.set(pk::Value::string("b"), shared);
  dict.attributes = pk::Value::dict();
  dict.attributes.mutable_dict().set(pk::Value::string("_metadata"), pk::Value::integer(1));

  std::vector<at::Tensor> stored;
  const std::string bytes = pk::pickle(d, [&](const at::Tensor& c) {
    EXPECT_TRUE(c.is_contiguous());
    stored.push_back(c);
    return std::to_string(stored.size() - 1);
  }, "out.pkl");
  ASSERT_EQ(stored.size(), 2u);
  const pk::Value back = load(bytes, [&](const std::string& key, at::ScalarType, std::int64_t) {
    return stored.at(std::stoul(key)).storage();
  });
  ASSERT_TRUE(back.is_dict());
  EXPECT_TRUE(back.as_dict().ordered);
  EXPECT_TRUE(at::equal(back.get("t")->as_tensor(), t.t()));
  EXPECT_TRUE(at::equal(back.get("i")->as_tensor(), dict.find("i")->as_tensor()));
  const auto& ints = back.get("ints")->items();
  const std::vector<std::int64_t> expect_ints{0, 255, 256, 65536, -1, INT64_MIN, INT64_MAX};
  for (std::size_t i = 0; i < ints.size(); ++i) EXPECT_EQ(ints[i].as_int(), expect_ints[i]);
  const auto& tup = back.get(7)->items();
  EXPECT_DOUBLE_EQ(tup[0].as_double(), 1e-8);
  EXPECT_EQ(tup[1].as_bytes(), std::string("\x00\xe9", 2));
  EXPECT_TRUE(tup[2].is_none());
  EXPECT_FALSE(tup[3].as_bool());
  EXPECT_EQ(back.get("a")->container_id(), back.get("b")->container_id());
  EXPECT_EQ(back.as_dict().attributes.get("_metadata")->as_int(), 1);
  // Key order is kept.
  std::vector<std::string> keys;
  for (const auto& [k, v] : back.as_dict().items()) keys.push_back(pk::repr(k));
  EXPECT_EQ(keys, (std::vector<std::string>{"'t'", "'i'", "'ints'", "7", "'a'", "'b'"}));
}

TEST(Pickle, RefusesWhatItCannotWrite) {
  const pk::Value v = pk::Value::tensor(at::ones({2}, at::kComplexFloat));
  expect_error([&] { pk::pickle(v, [](const at::Tensor&) { return std::string("0"); }, "out.pkl"); },
               {"out.pkl", "ComplexFloat"});
}

TEST(PickleJson, ConfigRoundTrip) {
  const nlohmann::json cfg = {{"vit", "tiny"}, {"k_test", 10}, {"alpha", 0.4}, {"flags", {true, nullptr}},
                              {"nested", {{"a", "b"}}}};
  const pk::Value v = pk::from_json(cfg);
  EXPECT_EQ(v.get("vit")->as_string(), "tiny");
  EXPECT_EQ(v.get("k_test")->as_int(), 10);
  EXPECT_EQ(pk::to_json(v), cfg);
}
