// The one exception type libblip throws for bad input: a message that names the file (or the
// setting) and the reason, so that tools can print it and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace blip {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws Error("<what>: <reason>"), e.g. fail("model.pth", "truncated zip archive").
[[noreturn]] void fail(const std::string& what, const std::string& reason);

}  // namespace blip
