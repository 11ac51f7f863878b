// Locating the reference fixtures (../shared/fixtures) from tests.
#pragma once
#include <string>

namespace blip::test {

// The fixtures root: $BLIP_FIXTURES_DIR if set, else ../shared/fixtures next to the checkout.
std::string fixtures_root();
// fixtures_root()/blip_ref
std::string blip_ref_dir();
// True when fixtures_root() holds blip_ref/ and the BERT vocabulary.
bool fixtures_available();
// A fresh empty temporary directory, removed at process exit.
std::string temp_dir();

}  // namespace blip::test

// Skips the current test, saying why, when the fixtures are absent (e.g. on a user's machine).
#define BLIP_REQUIRE_FIXTURES()                                                              \
  do {                                                                                       \
    if (!::blip::test::fixtures_available())                                                 \
      GTEST_SKIP() << "reference fixtures not found at '" << ::blip::test::fixtures_root() \
                   << "' (set BLIP_FIXTURES_DIR to the folder holding blip_ref/)";          \
  } while (0)
