// Expects a blip::Error whose message contains every one of `parts` (the file, the reason, ...).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "blip/error.h"

namespace blip::test {

template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no blip::Error thrown" << (parts.empty() ? "" : " (expected one mentioning '" + parts[0] + "')");
  } catch (const blip::Error& e) {
    const std::string message = e.what();
    for (const auto& p : parts)
      EXPECT_NE(message.find(p), std::string::npos) << "message '" << message << "' lacks '" << p << "'";
  }
}

}  // namespace blip::test
