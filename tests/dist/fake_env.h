// An EnvLookup over a fixed map, for tests of code that reads launcher variables.
#pragma once

#include "blip/dist/distributed.h"

#include <map>
#include <memory>
#include <string>

namespace blip::test {

inline blip::dist::EnvLookup fake_env(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    const auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

}  // namespace blip::test
