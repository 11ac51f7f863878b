// numpy's indirect introsort (numpy/core/src/npysort/quicksort.cpp aquicksort_ and
// npysort_heapsort.h aheapsort_), written over a comparison of item indices so that tests can
// drive it with an adversarial comparator. numpy_argsort.cpp instantiates it with numpy's
// float ordering. Every swap is numpy's: the order of equal keys depends on it.
#pragma once

#include <cstdint>
#include <utility>

namespace blip::eval::detail {

// Partitions of more than kInsertionSortMax + 1 elements are split (numpy's SMALL_QUICKSORT);
// the explicit stack holds 2 entries per partition step, at most 2 per bit of the index type.
inline constexpr std::int64_t kInsertionSortMax = 15;
inline constexpr int kIntroStackEntries = 2 * 64;

// floor(log2(n)) for n > 0 (numpy's npy_get_msb).
inline int most_significant_bit(std::uint64_t n) {
  int msb = 0;
  while (n >>= 1) ++msb;
  return msb;
}

// aheapsort_: a 1-based binary max-heap over idx[0..n). less(a, b) compares items a and b.
// Moves `value` down from the hole at `hole` of the 1-based heap a[1..n] (numpy's sift-down).
template <class Less>
void sift_down(std::int64_t* a, std::int64_t hole, std::int64_t value, std::int64_t n, Less& less) {
  std::int64_t i = hole;
  for (std::int64_t j = hole << 1; j <= n;) {
    if (j < n && less(a[j], a[j + 1])) j += 1;
    if (!less(value, a[j])) break;
    a[i] = a[j];
    i = j;
    j += j;
  }
  a[i] = value;
}

template <class Less>
void heap_argsort(std::int64_t* idx, std::int64_t n, Less& less) {
  std::int64_t* a = idx - 1;  // 1-based view
  for (std::int64_t l = n >> 1; l > 0; --l) sift_down(a, l, a[l], n, less);
  for (; n > 1;) {
    const std::int64_t tmp = a[n];
    a[n] = a[1];
    n -= 1;
    sift_down(a, 1, tmp, n, less);
  }
}

// aquicksort_: sorts the item indices idx[0..num) by less(). Returns how many times the
// recursion budget (2 * floor(log2(num))) ran out and a partition went to heapsort.
template <class Less>
int intro_argsort(std::int64_t* idx, std::int64_t num, Less& less) {
  int heapsorts = 0;
  std::int64_t* pl = idx;
  std::int64_t* pr = idx + num - 1;
  std::int64_t* stack[kIntroStackEntries];
  std::int64_t** sptr = stack;
  int depth[kIntroStackEntries];
  int* psdepth = depth;
  int cdepth = most_significant_bit(static_cast<std::uint64_t>(num)) * 2;

  for (;;) {
    if (cdepth < 0) {
      ++heapsorts;
      heap_argsort(pl, pr - pl + 1, less);
    } else {
      while ((pr - pl) > kInsertionSortMax) {
        // Median of three: order *pl, *pm, *pr, then park the pivot at pr - 1.
        std::int64_t* pm = pl + ((pr - pl) >> 1);
        if (less(*pm, *pl)) std::swap(*pm, *pl);
        if (less(*pr, *pm)) std::swap(*pr, *pm);
        if (less(*pm, *pl)) std::swap(*pm, *pl);
        const std::int64_t pivot = *pm;
        std::int64_t* pi = pl;
        std::int64_t* pj = pr - 1;
        std::swap(*pm, *pj);
        for (;;) {
          do {
            ++pi;
          } while (less(*pi, pivot));
          do {
            --pj;
          } while (less(pivot, *pj));
          if (pi >= pj) break;
          std::swap(*pi, *pj);
        }
        std::swap(*pi, *(pr - 1));
        // Continue with the smaller side; push the larger one.
        if (pi - pl < pr - pi) {
          *sptr++ = pi + 1;
          *sptr++ = pr;
          pr = pi - 1;
        } else {
          *sptr++ = pl;
          *sptr++ = pi - 1;
          pl = pi + 1;
        }
        *psdepth++ = --cdepth;
      }
      // Insertion sort of the small partition.
      for (std::int64_t* pi = pl + 1; pi <= pr; ++pi) {
        const std::int64_t vi = *pi;
        std::int64_t* pj = pi;
        std::int64_t* pk = pi - 1;
        while (pj > pl && less(vi, *pk)) *pj-- = *pk--;
        *pj = vi;
      }
    }
    if (sptr == stack) break;
    pr = *(--sptr);
    pl = *(--sptr);
    cdepth = *(--psdepth);
  }
  return heapsorts;
}

}  // namespace blip::eval::detail
