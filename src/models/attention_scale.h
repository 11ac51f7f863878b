// Attention's score scale (1/sqrt(head_dim)) applied to the queries instead of the scores when
// that gives the same bits: multiplying by a power of two is exact (short of subnormals), so
// (q * s) @ k^T == (q @ k^T) * s element for element, and q is keys/head_dim times smaller than
// the score matrix (577 image tokens: 9x fewer multiplications and no extra pass over the
// scores). BLIP's head_dim 64 gives s = 1/8. Any other scale keeps BLIP's order of operations.
#pragma once

#include <cmath>

namespace blip::models {

inline bool is_power_of_two(double s) {
  int exponent = 0;
  return s > 0 && std::isfinite(s) && std::frexp(s, &exponent) == 0.5;
}

}  // namespace blip::models
