// What the tools share on the command line: README's exit codes (0 success, 1 usage error or bad
// input, 2 internal error), one line on stderr per error, and number validators whose messages
// name the flag and the accepted range in plain numbers.
#pragma once

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <type_traits>

#include "blip/bf16_hardware.h"
#include "blip/error.h"

namespace blip::cli {

constexpr int kExitUsage = 1;
constexpr int kExitInternal = 2;

// Accepted ranges shared by the tools' flags.
constexpr std::int64_t kMaxSeed = std::int64_t{1} << 62;
constexpr std::int64_t kMaxThreads = 4096;
constexpr std::int64_t kMaxWorkers = 256;
constexpr std::int64_t kMaxBatch = std::int64_t{1} << 20;
constexpr double kMaxDistTimeoutS = 7 * 24 * 3600.0;  // a week

// Parses the command line. Returns -1 to go on, else the exit code: 0 after --help (printed on
// stdout), kExitUsage after a usage error (one line on stderr: "<tool>: <flag>: <reason>").
inline int parse(CLI::App& app, int argc, char** argv, const char* tool) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    return kExitUsage;
  }
}

namespace detail {

inline std::string number_text(std::int64_t v) { return std::to_string(v); }
inline std::string number_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

// A whole decimal number in [INT64_MIN, INT64_MAX], nothing else ("1e3", "0x10", "5 " fail).
inline bool parse_number(const std::string& s, std::int64_t* out) {
  if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '+')) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno == ERANGE || end != s.c_str() + s.size() || end == s.c_str()) return false;
  *out = v;
  return true;
}
// A finite decimal number ("nan", "inf" and overflowing values such as 1e999 fail).
inline bool parse_number(const std::string& s, double* out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (errno == ERANGE || end != s.c_str() + s.size() || end == s.c_str() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

template <typename T>
CLI::Validator range_validator(T lo, T hi, bool lo_open) {
  const std::string range = std::string(lo_open ? "(" : "[") + number_text(lo) + ", " + number_text(hi) + "]";
  const char* kind = std::is_integral_v<T> ? "an integer" : "a number";
  return CLI::Validator(
      [=](std::string& input) -> std::string {
        T value{};
        const bool ok = parse_number(input, &value) && (lo_open ? value > lo : value >= lo) && value <= hi;
        if (!ok) {
          constexpr std::size_t kShown = 40;  // of a mistyped value (it may be 300 digits long)
          const std::string shown = input.size() > kShown ? input.substr(0, kShown) + "..." : input;
          return std::string("expected ") + kind + " in " + range + ", got '" + shown + "'";
        }
        // Hand CLI11 the canonical spelling: it reads integers with base 0 ("010" would be 8).
        if constexpr (std::is_integral_v<T>) input = std::to_string(value);
        return {};
      },
      range);
}

}  // namespace detail

// Integers in [lo, hi]; the message names the range, e.g. "--seed: expected an integer in
// [0, 4611686018427387904], got '-1'". Attach it with ->transform(), not ->check(): it hands
// CLI11 the canonical decimal, and check() would drop that change.
inline CLI::Validator int_range(std::int64_t lo, std::int64_t hi) { return detail::range_validator(lo, hi, false); }
// Finite numbers in [lo, hi] (NaN and infinities are refused).
inline CLI::Validator number_range(double lo, double hi) { return detail::range_validator(lo, hi, false); }
// Finite numbers in (0, hi].
inline CLI::Validator positive_up_to(double hi) { return detail::range_validator(0.0, hi, true); }

// A path that must not be empty ("--out: empty path").
inline CLI::Validator non_empty_path() {
  return CLI::Validator([](std::string& input) { return input.empty() ? std::string("empty path") : std::string(); },
                        "PATH");
}

// After a successful run in bf16 on the CPU: one line on stderr where this CPU has no usable AMX,
// so that bf16 only cost precision (blip/bf16_hardware.h). At the end, so that a run that fails
// still prints one line, its error.
inline void note_cpu_bf16(const char* tool, bool bf16_on_cpu) {
  if (!bf16_on_cpu) return;
  const std::string warning = blip::cpu_bf16_warning(blip::bf16_hardware());
  if (warning.empty()) return;
  std::fflush(stdout);  // after the run's own output where both go to one pipe
  std::fprintf(stderr, "%s: note: %s; --precision fp32 is the better choice on this CPU\n", tool, warning.c_str());
}

// Call inside `catch (...)`: prints the exception in flight as one line and returns the exit code.
// Bad input (blip::Error) and running out of memory exit kExitUsage; anything else is a bug and
// exits kExitInternal. c10 errors are shown without their C++ backtrace, first line only.
inline int report_exception(const char* tool, const char* oom_hint) {
  auto first_line = [](std::string s) {
    if (const auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
    return s;
  };
  auto out_of_memory = [&](const std::string& detail) {
    std::fprintf(stderr, "%s: error: out of memory%s%s (%s)\n", tool, detail.empty() ? "" : ": ", detail.c_str(),
                 oom_hint);
    return kExitUsage;
  };
  try {
    throw;
  } catch (const blip::Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
    return kExitUsage;
  } catch (const std::bad_alloc&) {
    return out_of_memory("");
  } catch (const c10::Error& e) {
    const std::string msg = first_line(e.what_without_backtrace());
    if (dynamic_cast<const c10::OutOfMemoryError*>(&e) || msg.find("not enough memory") != std::string::npos ||
        msg.find("can't allocate memory") != std::string::npos || msg.find("out of memory") != std::string::npos) {
      // Drop the "[enforce fail at alloc_cpu.cpp:75] err == 0. " prefix: it names torch's code.
      const auto from = msg.find("DefaultCPUAllocator");
      return out_of_memory(from == std::string::npos ? msg : msg.substr(from));
    }
    std::fprintf(stderr, "%s: internal error: %s\n", tool, msg.c_str());
    return kExitInternal;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", tool, first_line(e.what()).c_str());
    return kExitInternal;
  } catch (...) {
    std::fprintf(stderr, "%s: internal error: unknown exception\n", tool);
    return kExitInternal;
  }
}

}  // namespace blip::cli
