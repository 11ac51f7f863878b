#include "blip/eval/numpy_argsort.h"

#include "eval/numpy_introsort.h"

#include <numeric>

namespace blip::eval {
namespace {

// numpy's order for floating keys (npysort_common.h): NaN sorts after everything.
template <typename T>
struct NumpyFloatLess {
  const T* v;
  bool operator()(std::int64_t a, std::int64_t b) const {
    const T x = v[a], y = v[b];
    return x < y || (y != y && x == x);
  }
};

template <typename T>
std::vector<std::int64_t> argsort_impl(const T* keys, std::int64_t n) {
  std::vector<std::int64_t> idx(n > 0 ? static_cast<std::size_t>(n) : 0);
  std::iota(idx.begin(), idx.end(), std::int64_t{0});
  if (n > 1) {
    NumpyFloatLess<T> less{keys};
    detail::intro_argsort(idx.data(), n, less);
  }
  return idx;
}

}  // namespace

std::vector<std::int64_t> numpy_argsort(const float* keys, std::int64_t n) {
  return argsort_impl(keys, n);
}

std::vector<std::int64_t> numpy_argsort(const double* keys, std::int64_t n) {
  return argsort_impl(keys, n);
}

}  // namespace blip::eval
