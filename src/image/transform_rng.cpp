#include "blip/image/transform_rng.h"

#include "blip/error.h"

#include <string>

namespace blip::image {
namespace {

// splitmix64 (Steele, Lea, Flood 2014): spreads any seed, including 0, over the whole state.
std::uint64_t splitmix64(std::uint64_t& x) {
  x += 0x9E3779B97F4A7C15ull;
  std::uint64_t z = x;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

constexpr double kTwoPowMinus53 = 1.0 / 9007199254740992.0;  // 2^-53

}  // namespace

TransformRng::TransformRng(std::uint64_t seed) {
  std::uint64_t x = seed;
  for (auto& s : state_) s = splitmix64(x);
}

// xoshiro256** 1.0 (Blackman, Vigna 2018).
std::uint64_t TransformRng::next_u64() {
  const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const std::uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

double TransformRng::uniform() { return static_cast<double>(next_u64() >> 11) * kTwoPowMinus53; }

double TransformRng::uniform(double a, double b) {
  if (a == b) return a;
  return a + (b - a) * uniform();
}

std::int64_t TransformRng::uniform_int(std::int64_t n) {
  if (n <= 0) fail("TransformRng::uniform_int", "n must be positive, got " + std::to_string(n));
  const std::uint64_t range = static_cast<std::uint64_t>(n);
  // Reject the top partial block of 2^64 so that every residue is equally likely.
  const std::uint64_t limit = (~std::uint64_t{0}) - ((~std::uint64_t{0}) % range + 1) % range;
  std::uint64_t x = next_u64();
  while (x > limit) x = next_u64();
  return static_cast<std::int64_t>(x % range);
}

std::uint64_t derive_seed(std::uint64_t base, std::uint64_t index) {
  std::uint64_t x = base;
  const std::uint64_t a = splitmix64(x);
  std::uint64_t y = a ^ (index * 0xD1B54A32D192ED03ull);
  return splitmix64(y);
}

}  // namespace blip::image
