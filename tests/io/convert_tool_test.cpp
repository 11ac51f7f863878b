// blip_convert end to end (skipped when the tool has not been built in this build tree).
#include "blip/io/checkpoint.h"
#include "blip/io/safetensors.h"

#include "common/fixtures.h"
#include "common/run_command.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

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

namespace {

struct ConvertCase {
  std::string name;
  std::string args;    // after the tool's name; @DIR@ is the test's temp dir, @PTH@ the fixture
  int exit_code;
  std::string needle;  // in the output
};

std::string expand(std::string s, const std::string& dir, const std::string& pth) {
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"@DIR@", dir}, {"@PTH@", pth}})
    for (std::size_t at; (at = s.find(key)) != std::string::npos;) s.replace(at, key.size(), value);
  return s;
}

std::size_t line_count(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

mode_t file_type(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & S_IFMT;
}

}  // namespace

// Usage errors and special files: exit 1 (--help 0) and one line naming the argument or file.
TEST(ConvertTool, BadArgumentsAndSpecialFilesExitOneWithOneLine) {
  BLIP_REQUIRE_FIXTURES();
  if (!std::filesystem::exists(tool())) GTEST_SKIP() << "build blip_convert first (ninja blip_convert)";
  const std::string dir = blip::test::temp_dir();
  const std::string pth = blip::test::blip_ref_dir() + "/tiny_checkpoint.pth";
  ASSERT_EQ(::mkfifo((dir + "/fifo.pth").c_str(), 0600), 0);
  std::filesystem::create_symlink("/dev/null", dir + "/null_link.pth");
  std::filesystem::create_directory(dir + "/a_dir.pth");
  const std::vector<ConvertCase> cases = {
      {"empty OUT", "@PTH@ ''", 1, "blip_convert: OUT: empty path"},
      {"empty IN", "'' @DIR@/x.pth", 1, "blip_convert: IN: empty path"},
      {"unknown flag", "@PTH@ @DIR@/x.pth --model-onyl", 1, "--model-onyl"},
      {"missing OUT", "@PTH@", 1, "OUT is required"},
      {"OUT is /dev/null", "@PTH@ /dev/null", 1, "/dev/null: unknown output extension"},
      {"OUT is a FIFO", "@PTH@ @DIR@/fifo.pth", 1,
       "@DIR@/fifo.pth: is not a regular file (a FIFO); refusing to replace it"},
      {"OUT links to /dev/null", "@PTH@ @DIR@/null_link.pth", 1,
       "@DIR@/null_link.pth: is not a regular file (a symbolic link); refusing to replace it"},
      {"OUT is a directory", "@PTH@ @DIR@/a_dir.pth", 1, "@DIR@/a_dir.pth: is not a regular file (a directory)"},
      {"IN is a directory", "@DIR@/a_dir.pth @DIR@/x.safetensors", 1, "@DIR@/a_dir.pth: is a directory"},
      {"IN is /dev/zero", "/dev/zero @DIR@/x.safetensors", 1, "/dev/zero: is not a regular file (a character device)"},
      {"IN is a FIFO", "@DIR@/fifo.pth @DIR@/x.pth", 1,
       "@DIR@/fifo.pth: is not a regular file (a FIFO)"},
  };
  for (const auto& c : cases) {
    // timeout: a FIFO opened for reading without O_NONBLOCK would wait for a writer forever.
    const auto r = blip::test::run_command("timeout 60 " + tool() + " " + expand(c.args, dir, pth));
    const std::string& out = r.output;
    EXPECT_EQ(r.exit_code, c.exit_code) << c.name << ": " << out;
    EXPECT_NE(out.find(expand(c.needle, dir, pth)), std::string::npos) << c.name << ": " << out;
    EXPECT_EQ(line_count(out), 1u) << c.name << ": " << out;
  }
  EXPECT_EQ(file_type(dir + "/fifo.pth"), S_IFIFO);
  EXPECT_EQ(file_type(dir + "/null_link.pth"), S_IFLNK);
  EXPECT_EQ(file_type("/dev/null"), S_IFCHR);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.pth"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.safetensors"));
  std::string help;
  EXPECT_EQ(run("--help", &help), 0) << help;
  EXPECT_NE(help.find("--model-only"), std::string::npos) << help;
}
