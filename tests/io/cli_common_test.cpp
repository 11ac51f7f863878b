// The tools' shared command-line helpers (tools/cli_common.h): range validators whose messages
// name the flag and the range in plain numbers, exit codes, and one-line reports of exceptions
// (a c10 error without its C++ backtrace; an allocation failure as "out of memory").
#include "../tools/cli_common.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace {

// Parses `args` (after the program name) and returns the error message, "" on success.
std::string parse_error(CLI::App& app, std::vector<std::string> args) {
  std::vector<char*> argv = {const_cast<char*>("tool")};
  for (auto& a : args) argv.push_back(a.data());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
    return "";
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
}

TEST(CliCommon, IntegerRangeNamesTheFlagAndTheRange) {
  std::int64_t seed = 0;
  CLI::App app;
  app.add_option("--seed", seed)->transform(blip::cli::int_range(0, blip::cli::kMaxSeed));
  EXPECT_EQ(parse_error(app, {"--seed", "-1"}), "--seed: expected an integer in [0, 4611686018427387904], got '-1'");
  EXPECT_EQ(parse_error(app, {"--seed", "1.5"}), "--seed: expected an integer in [0, 4611686018427387904], got '1.5'");
  EXPECT_EQ(parse_error(app, {"--seed", "0x10"}), "--seed: expected an integer in [0, 4611686018427387904], got '0x10'");
  const std::string huge = "9" + std::string(400, '9');
  const std::string message = parse_error(app, {"--seed", huge});
  EXPECT_LT(message.size(), 120u) << message;
  EXPECT_NE(message.find("got '9999"), std::string::npos) << message;
  // Canonical decimal reaches the variable (CLI11 alone would read "010" as octal 8).
  EXPECT_EQ(parse_error(app, {"--seed", "010"}), "");
  EXPECT_EQ(seed, 10);
  EXPECT_EQ(parse_error(app, {"--seed", "4611686018427387904"}), "");
  EXPECT_EQ(seed, blip::cli::kMaxSeed);
}

TEST(CliCommon, NumberRangesRefuseNanInfinityAndOverflow) {
  double timeout = 1;
  CLI::App app;
  app.add_option("--dist-timeout", timeout)->check(blip::cli::positive_up_to(blip::cli::kMaxDistTimeoutS));
  for (const std::string bad : {"nan", "NaN", "inf", "-inf", "1e300", "1e999", "0", "-5", "", "3s", " 5"})
    EXPECT_EQ(parse_error(app, {"--dist-timeout", bad}),
              "--dist-timeout: expected a number in (0, 604800], got '" + bad + "'")
        << bad;
  EXPECT_EQ(parse_error(app, {"--dist-timeout", "2.5"}), "");
  EXPECT_EQ(timeout, 2.5);
  double lr = 0;
  CLI::App app2;
  app2.add_option("--x", lr)->check(blip::cli::number_range(0.001, 10));
  EXPECT_EQ(parse_error(app2, {"--x", "0.0001"}), "--x: expected a number in [0.001, 10], got '0.0001'");
  EXPECT_EQ(parse_error(app2, {"--x", "10"}), "");
}

TEST(CliCommon, EmptyPathIsAUsageError) {
  std::string out;
  CLI::App app;
  app.add_option("--out", out)->check(blip::cli::non_empty_path());
  EXPECT_EQ(parse_error(app, {"--out", ""}), "--out: empty path");
  EXPECT_EQ(parse_error(app, {"--out", "x"}), "");
}

TEST(CliCommon, ParseMapsUsageErrorsToOneAndHelpToZero) {
  CLI::App app;
  int threads = 1;
  app.add_option("--threads", threads)->transform(blip::cli::int_range(1, 4096));
  std::vector<std::string> args = {"tool", "--threads", "0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStderr();
  EXPECT_EQ(blip::cli::parse(app, 3, argv.data(), "tool"), blip::cli::kExitUsage);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "tool: --threads: expected an integer in [1, 4096], got '0'\n");

  CLI::App app2;
  std::vector<std::string> args2 = {"tool", "--bogus"};
  std::vector<char*> argv2;
  for (auto& a : args2) argv2.push_back(a.data());
  testing::internal::CaptureStderr();
  EXPECT_EQ(blip::cli::parse(app2, 2, argv2.data(), "tool"), blip::cli::kExitUsage);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("--bogus"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;

  CLI::App app3;
  std::vector<std::string> args3 = {"tool", "--help"};
  std::vector<char*> argv3;
  for (auto& a : args3) argv3.push_back(a.data());
  testing::internal::CaptureStdout();
  EXPECT_EQ(blip::cli::parse(app3, 2, argv3.data(), "tool"), 0);
  testing::internal::GetCapturedStdout();
}

// Runs `thrower` inside a try and reports its exception as a tool would.
template <class F>
int report(F&& thrower, std::string* err) {
  testing::internal::CaptureStderr();
  int code = -1;
  try {
    thrower();
  } catch (...) {
    code = blip::cli::report_exception("tool", "lower the batch size");
  }
  *err = testing::internal::GetCapturedStderr();
  return code;
}

TEST(CliCommon, ExceptionsBecomeOneLine) {
  std::string err;
  EXPECT_EQ(report([] { blip::fail("a.yaml", "bad key"); }, &err), 1);
  EXPECT_EQ(err, "tool: error: a.yaml: bad key\n");
  EXPECT_EQ(report([] { throw std::bad_alloc(); }, &err), 1);
  EXPECT_EQ(err, "tool: error: out of memory (lower the batch size)\n");
  // A c10 error's what() holds a C++ backtrace; only its first line is shown.
  EXPECT_EQ(report([] { TORCH_CHECK(false, "shape mismatch"); }, &err), blip::cli::kExitInternal);
  EXPECT_EQ(err.rfind("tool: internal error: shape mismatch", 0), 0u) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(report([] { throw std::runtime_error("first\nsecond"); }, &err), blip::cli::kExitInternal);
  EXPECT_EQ(err, "tool: internal error: first\n");
}

// Issue 9, item 5: a real allocation failure (4 TiB) is one line "out of memory", exit 1.
TEST(CliCommon, AllocationFailureIsOutOfMemory) {
  std::string err;
  bool allocated = false;
  const int code = report(
      [&] {
        const at::Tensor t = at::empty({std::int64_t{1} << 40}, at::kFloat);
        allocated = t.defined();
      },
      &err);
  if (allocated) GTEST_SKIP() << "the kernel granted 4 TiB of virtual memory (overcommit); nothing to report";
  EXPECT_EQ(code, 1) << err;
  EXPECT_EQ(err.rfind("tool: error: out of memory: ", 0), 0u) << err;
  EXPECT_NE(err.find("(lower the batch size)"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(err.find("Exception raised from"), std::string::npos) << err;
}

}  // namespace
