// Files written by Python's torch.save (protocols 2 and 4) with the features BLIP checkpoints
// may use: views sharing a storage, nn.Parameter, torch.device, bytes, tuples, big ints.
#include "blip/io/checkpoint.h"

#include "common/fixtures.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>

namespace {

bool python_torch_available() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

}  // namespace

class PythonWritten : public ::testing::TestWithParam<int> {};

TEST_P(PythonWritten, LoadsEveryFeature) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
  const int protocol = GetParam();
  const std::string path = blip::test::temp_dir() + "/py" + std::to_string(protocol) + ".pth";
  const std::string script =
      "import torch, collections\n"
      "base = torch.arange(12.).view(3, 4)\n"
      "sd = collections.OrderedDict(a=base, col=base[:, 1], t=base.t(), p=torch.nn.Parameter(torch.ones(2)),\n"
      "    h=torch.ones(2, dtype=torch.half), bf=torch.full((1,), 2.5, dtype=torch.bfloat16),\n"
      "    flag=torch.tensor([True, False]), i=torch.arange(3))\n"
      "obj = {\"model\": sd, \"epoch\": 7, \"config\": {\"dev\": torch.device(\"cpu\"), \"b\": b\"\\x00\\xff\",\n"
      "    \"t\": (1, 2.5, None), \"big\": 2**62, \"neg\": -5, \"s\": \"\\u00e9t\\u00e9\"}}\n"
      "torch.save(obj, \"" + path + "\", pickle_protocol=" + std::to_string(protocol) + ")\n";
  ASSERT_EQ(std::system(("/usr/bin/python3 -c '" + script + "' 2>/dev/null").c_str()), 0);

  const auto ckpt = blip::io::load_pth(path);
  ASSERT_EQ(ckpt.model.size(), 8u);
  const at::Tensor base = at::arange(12, at::kFloat).view({3, 4});
  const at::Tensor& a = ckpt.model[0].second;
  const at::Tensor& col = ckpt.model[1].second;
  const at::Tensor& t = ckpt.model[2].second;
  EXPECT_TRUE(at::equal(a, base));
  EXPECT_TRUE(at::equal(col, base.select(1, 1)));
  EXPECT_TRUE(at::equal(t, base.t()));
  EXPECT_FALSE(t.is_contiguous());
  // One storage shared by the three views, as in Python.
  EXPECT_EQ(a.storage().data(), col.storage().data());
  EXPECT_EQ(a.storage().data(), t.storage().data());
  EXPECT_EQ(col.storage_offset(), 1);
  EXPECT_TRUE(at::equal(ckpt.model[3].second, at::ones({2})));
  EXPECT_EQ(ckpt.model[4].second.scalar_type(), at::kHalf);
  EXPECT_EQ(ckpt.model[5].second.scalar_type(), at::kBFloat16);
  EXPECT_EQ(ckpt.model[5].second.to(at::kFloat).item<float>(), 2.5f);
  EXPECT_TRUE(at::equal(ckpt.model[6].second, at::tensor({1, 0}, at::kLong).to(at::kBool)));
  EXPECT_TRUE(at::equal(ckpt.model[7].second, at::arange(3, at::kLong)));

  EXPECT_EQ(ckpt.epoch, 7);
  const auto& c = ckpt.config;
  EXPECT_EQ(c.get("dev")->as_string(), "cpu");
  EXPECT_EQ(c.get("b")->as_bytes(), std::string("\x00\xff", 2));
  ASSERT_TRUE(c.get("t")->is_tuple());
  EXPECT_EQ(c.get("t")->items()[0].as_int(), 1);
  EXPECT_DOUBLE_EQ(c.get("t")->items()[1].as_double(), 2.5);
  EXPECT_TRUE(c.get("t")->items()[2].is_none());
  EXPECT_EQ(c.get("big")->as_int(), std::int64_t{1} << 62);
  EXPECT_EQ(c.get("neg")->as_int(), -5);
  EXPECT_EQ(c.get("s")->as_string(), "\xc3\xa9t\xc3\xa9");
}

INSTANTIATE_TEST_SUITE_P(Protocols, PythonWritten, ::testing::Values(2, 4));
