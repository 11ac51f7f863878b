// Helpers the fuzz targets share.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>

namespace blip::fuzz {

// With BLIP_FUZZ_VERBOSE set, the targets print the errors they expect (to check what a seed
// input reaches); fuzzing runs leave it unset.
inline void expected_error(const std::exception& e) {
  static const bool verbose = std::getenv("BLIP_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "expected error: %s\n", e.what());
}

// An invariant of a result; a broken one is a bug, reported like a crash.
inline void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

}  // namespace blip::fuzz
