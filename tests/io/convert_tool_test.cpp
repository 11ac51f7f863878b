// blip_convert end to end (skipped when the tool has not been built in this build tree).
#include "blip/io/checkpoint.h"
#include "blip/io/safetensors.h"

#include "common/fixtures.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

namespace {

std::string tool() { return std::string(BLIP_BINARY_DIR) + "/tools/blip_convert"; }

int run(const std::string& args, std::string* output) {
  const std::string cmd = tool() + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) output->append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST(ConvertTool, PthToSafetensorsAndBack) {
  BLIP_REQUIRE_FIXTURES();
  if (!std::filesystem::exists(tool())) GTEST_SKIP() << "build blip_convert first (ninja blip_convert)";
  const std::string dir = blip::test::temp_dir();
  const std::string pth = blip::test::blip_ref_dir() + "/tiny_checkpoint.pth";
  std::string out;
  ASSERT_EQ(run(pth + " " + dir + "/m.safetensors", &out), 0) << out;
  EXPECT_NE(out.find("189 tensors"), std::string::npos) << out;
  ASSERT_EQ(run(dir + "/m.safetensors " + dir + "/m.pth", &out), 0) << out;
  const auto a = blip::io::load_pth(pth);
  const auto b = blip::io::load_pth(dir + "/m.pth");
  ASSERT_EQ(a.model.size(), b.model.size());
  for (const auto& [name, t] : a.model) {
    bool found = false;
    for (const auto& [n2, t2] : b.model)
      if (n2 == name) found = at::equal(t, t2);
    EXPECT_TRUE(found) << name;
  }
  EXPECT_EQ(b.epoch, 0);  // carried through safetensors __metadata__
  EXPECT_EQ(b.config.get("vit")->as_string(), "tiny");

  out.clear();
  ASSERT_EQ(run(pth + " " + dir + "/model_only.pth --model-only", &out), 0) << out;
  const auto c = blip::io::load_pth(dir + "/model_only.pth");
  EXPECT_TRUE(c.optimizer.is_none());
  EXPECT_TRUE(c.config.is_none());
  ASSERT_EQ(c.model.size(), 189u);
  for (std::size_t i = 0; i < c.model.size(); ++i) EXPECT_EQ(c.model[i].first, a.model[i].first);  // order kept
}

TEST(ConvertTool, ErrorsExitOneWithMessage) {
  if (!std::filesystem::exists(tool())) GTEST_SKIP() << "build blip_convert first (ninja blip_convert)";
  const std::string dir = blip::test::temp_dir();
  std::string out;
  EXPECT_EQ(run(dir + "/missing.pth " + dir + "/x.safetensors", &out), 1);
  EXPECT_NE(out.find(dir + "/missing.pth: cannot open"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run("", &out), 1);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.safetensors"));
}
