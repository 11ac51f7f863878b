// The random number generator of the training transform: xoshiro256** seeded through splitmix64.
//
// Every random decision of the training transform (crop box, flip, RandomAugment's ops, fire
// draws and signs) is drawn from one TransformRng seeded per sample, so that the same seed gives
// the same tensor on every platform, standard library and worker count. That is why the
// conversions to doubles and bounded integers are written here instead of using
// std::uniform_*_distribution, whose algorithms differ between standard libraries.
// (BLIP itself draws from torch's and numpy's global generators; those streams are not
// reproduced, only the decisions they feed.)
#pragma once

#include <array>
#include <cstdint>

namespace blip::image {

class TransformRng {
 public:
  explicit TransformRng(std::uint64_t seed);

  // The next 64 raw bits.
  std::uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits (a multiple of 2^-53).
  double uniform();
  // Uniform in [a, b) (a + (b - a) * uniform()); returns a when a == b.
  double uniform(double a, double b);
  // Uniform integer in [0, n), without modulo bias. Throws blip::Error for n <= 0.
  std::int64_t uniform_int(std::int64_t n);

 private:
  std::array<std::uint64_t, 4> state_{};
};

// A seed for stream `index` derived from `base` (e.g. base = run seed mixed with the epoch,
// index = dataset index): distinct indices give unrelated streams.
std::uint64_t derive_seed(std::uint64_t base, std::uint64_t index);

}  // namespace blip::image
