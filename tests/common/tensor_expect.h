// Numeric comparison of tensors for tests: |a - e| <= atol + rtol * |e| everywhere, printing the
// max abs and rel diff so that a passing run still shows how close it is.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <iomanip>
#include <iostream>
#include <string>

namespace blip::test {

inline void expect_tensor_close(const std::string& what, const at::Tensor& actual,
                                const at::Tensor& expected, double atol = 1e-4, double rtol = 1e-4) {
  ASSERT_TRUE(actual.defined()) << what << ": undefined tensor";
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what << ": shape differs";
  const at::Tensor a = actual.detach().cpu().to(at::kDouble), e = expected.cpu().to(at::kDouble);
  const at::Tensor diff = (a - e).abs();
  const double max_abs = diff.numel() ? diff.max().item<double>() : 0.0;
  const double max_rel = diff.numel() ? (diff / e.abs().clamp_min(1e-12)).max().item<double>() : 0.0;
  const bool ok = (diff <= atol + rtol * e.abs()).all().item<bool>();
  std::cout << "  " << std::left << std::setw(32) << what << " max abs " << std::scientific
            << std::setprecision(2) << max_abs << "  max rel " << max_rel << std::defaultfloat << "\n";
  EXPECT_TRUE(ok) << what << ": max abs diff " << max_abs << ", max rel diff " << max_rel;
}

inline void expect_tensor_equal(const std::string& what, const at::Tensor& actual, const at::Tensor& expected) {
  ASSERT_TRUE(actual.defined()) << what << ": undefined tensor";
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what << ": shape differs";
  ASSERT_EQ(actual.scalar_type(), expected.scalar_type()) << what << ": dtype differs";
  EXPECT_TRUE(at::equal(actual.cpu(), expected.cpu())) << what << ": values differ";
}

}  // namespace blip::test
