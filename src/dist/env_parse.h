// Reading launcher environment variables through an EnvLookup (distributed.cpp, num_threads.cpp).
#pragma once

#include "blip/dist/distributed.h"

#include <string>

namespace blip::dist::detail {

// `lookup`, or std::getenv when it is empty.
EnvLookup env_or_getenv(const EnvLookup& lookup);

// The value of `name`, or `fallback` when unset or empty.
std::string env_or(const EnvLookup& env, const char* name, const std::string& fallback);

// `value` (of variable `name`) as an integer in [min_value, max_value]; otherwise a blip::Error
// naming the variable and the value.
int parse_int_env(const char* name, const char* value, int min_value, int max_value);

}  // namespace blip::dist::detail
