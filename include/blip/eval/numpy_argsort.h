// numpy's default np.argsort (kind='quicksort') for float32/float64 keys, reproduced exactly.
//
// BLIP's itm_eval ranks with `np.argsort(score)[::-1]`. numpy's quicksort is an unstable
// introsort (median-of-3 quicksort, insertion sort for partitions of <= 16 elements, heapsort
// when the recursion budget of 2*floor(log2(n)) runs out), so the order in which equal keys
// come out — e.g. the many -100 entries of an evaluation score row — is an artefact of that
// algorithm. The ranks of ground truths that fall among those ties, and therefore the recall
// metrics, only match BLIP's when ties are broken the same way. NaN sorts last, as in numpy.
//
// This is numpy 1.24's scalar path (numpy/core/src/npysort/quicksort.cpp, aquicksort_); numpy
// 1.24 has no SIMD dispatch for argsort, so the result does not depend on the CPU.
#pragma once

#include <cstdint>
#include <vector>

namespace blip::eval {

// Indices 0..n-1 of `keys` in ascending key order, ties ordered exactly as numpy's argsort.
std::vector<std::int64_t> numpy_argsort(const float* keys, std::int64_t n);
std::vector<std::int64_t> numpy_argsort(const double* keys, std::int64_t n);

inline std::vector<std::int64_t> numpy_argsort(const std::vector<float>& keys) {
  return numpy_argsort(keys.data(), static_cast<std::int64_t>(keys.size()));
}
inline std::vector<std::int64_t> numpy_argsort(const std::vector<double>& keys) {
  return numpy_argsort(keys.data(), static_cast<std::int64_t>(keys.size()));
}

}  // namespace blip::eval
