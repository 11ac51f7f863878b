// numpy_argsort against numpy itself (/usr/bin/python3; skipped where numpy is absent), on score
// rows with many ties, NaN/inf/signed zeros, and adversarial inputs that force the heapsort path.
#include <gtest/gtest.h>

#include "blip/eval/numpy_argsort.h"
#include "common/fixtures.h"
#include "eval/numpy_introsort.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

using blip::eval::numpy_argsort;

constexpr const char* kPython = "/usr/bin/python3";

bool numpy_available() {
  static const bool ok = [] {
    const std::string cmd = std::string(kPython) + " -c 'import numpy' >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  }();
  return ok;
}

// A batch of arrays, each float32 or float64, sorted by numpy in one Python call.
struct Case {
  bool is_double = false;
  std::vector<float> f;
  std::vector<double> d;
  std::size_t size() const { return is_double ? d.size() : f.size(); }
};

// Writes the cases to a file, runs np.argsort on each (default kind) and reads the results back.
std::vector<std::vector<std::int64_t>> numpy_reference(const std::vector<Case>& cases) {
  const std::string dir = blip::test::temp_dir();
  const std::string in = dir + "/arrays.bin", out = dir + "/argsort.bin";
  {
    std::ofstream f(in, std::ios::binary);
    for (const Case& c : cases) {
      const std::int64_t header[2] = {c.is_double ? 1 : 0, static_cast<std::int64_t>(c.size())};
      f.write(reinterpret_cast<const char*>(header), sizeof header);
      if (c.is_double)
        f.write(reinterpret_cast<const char*>(c.d.data()), c.d.size() * sizeof(double));
      else
        f.write(reinterpret_cast<const char*>(c.f.data()), c.f.size() * sizeof(float));
    }
  }
  const std::string script =
      "import numpy as np, sys\n"
      "raw = open(sys.argv[1], 'rb').read(); pos = 0; outs = []\n"
      "while pos < len(raw):\n"
      "    kind, n = np.frombuffer(raw, np.int64, 2, pos); pos += 16\n"
      "    dt = np.float64 if kind == 1 else np.float32\n"
      "    a = np.frombuffer(raw, dt, int(n), pos); pos += int(n) * dt().itemsize\n"
      "    outs.append(np.argsort(a).astype(np.int64))\n"
      "open(sys.argv[2], 'wb').write(b''.join(o.tobytes() for o in outs))\n";
  const std::string script_path = dir + "/argsort.py";
  std::ofstream(script_path) << script;
  const std::string cmd = std::string(kPython) + " " + script_path + " " + in + " " + out;
  if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "numpy reference failed: " << cmd;

  std::ifstream f(out, std::ios::binary);
  std::vector<std::vector<std::int64_t>> result;
  for (const Case& c : cases) {
    std::vector<std::int64_t> r(c.size());
    f.read(reinterpret_cast<char*>(r.data()), r.size() * sizeof(std::int64_t));
    result.push_back(std::move(r));
  }
  return result;
}

// A BLIP-like score row: -100 everywhere except k entries; optionally ties among the scored ones.
template <typename T>
std::vector<T> score_row(std::mt19937& rng, std::size_t n, std::size_t k, int distinct_levels) {
  std::vector<T> row(n, T(-100));
  std::uniform_int_distribution<std::size_t> pos(0, n ? n - 1 : 0);
  std::uniform_int_distribution<int> level(0, distinct_levels - 1);
  for (std::size_t i = 0; i < k && n; ++i) row[pos(rng)] = T(0.25) * T(level(rng)) - T(1);
  return row;
}

// McIlroy's "killer adversary" (A Killer Adversary for Quicksort, 1999) run against our port of
// numpy's introsort: keys are fixed lazily so that every median-of-3 pivot is nearly the
// smallest, which exhausts the depth budget and forces the heapsort fallback.
std::vector<double> adversarial_keys(std::int64_t n, int* heapsorts) {
  const double gas = static_cast<double>(n);
  std::vector<double> val(n, gas);
  double solid = 0;
  std::int64_t candidate = 0;
  auto less = [&](std::int64_t x, std::int64_t y) {
    if (val[x] == gas && val[y] == gas) {
      if (x == candidate)
        val[x] = solid++;
      else
        val[y] = solid++;
    }
    if (val[x] == gas)
      candidate = x;
    else if (val[y] == gas)
      candidate = y;
    return val[x] < val[y];
  };
  std::vector<std::int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  *heapsorts = blip::eval::detail::intro_argsort(idx.data(), n, less);
  return val;  // items never frozen stay tied at `gas`
}

TEST(NumpyArgsort, SmallKnownCases) {
  EXPECT_TRUE(numpy_argsort(std::vector<float>{}).empty());
  EXPECT_EQ(numpy_argsort(std::vector<float>{3.f}), (std::vector<std::int64_t>{0}));
  EXPECT_EQ(numpy_argsort(std::vector<float>{3.f, 1.f, 2.f}), (std::vector<std::int64_t>{1, 2, 0}));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(numpy_argsort(std::vector<float>{nan, 1.f, -1.f}), (std::vector<std::int64_t>{2, 1, 0}));
}

TEST(NumpyArgsort, AdversaryReachesHeapsort) {
  int heapsorts = 0;
  const auto keys = adversarial_keys(2000, &heapsorts);
  EXPECT_GT(heapsorts, 0) << "the adversarial input should exhaust the quicksort depth budget";
  // And the argsort of the fixed keys is a valid ascending order.
  const auto order = numpy_argsort(keys);
  for (std::size_t i = 1; i < order.size(); ++i) EXPECT_LE(keys[order[i - 1]], keys[order[i]]);
}

TEST(NumpyArgsort, MatchesNumpyOnTiesNanAndAdversarialInputs) {
  if (!numpy_available()) GTEST_SKIP() << kPython << " with numpy is not available";
  std::mt19937 rng(1234);
  std::vector<Case> cases;
  const std::size_t sizes[] = {2, 3, 15, 16, 17, 18, 31, 33, 60, 64, 100, 257, 1000, 5000, 25000};
  for (std::size_t n : sizes) {
    for (int rep = 0; rep < 6; ++rep) {
      const std::size_t k = std::min<std::size_t>(n, rep < 3 ? 10 : n / 3 + 1);
      Case c32;
      c32.f = score_row<float>(rng, n, k, rep % 2 ? 3 : 1000);
      cases.push_back(c32);
      Case c64;
      c64.is_double = true;
      c64.d = score_row<double>(rng, n, k, rep % 2 ? 2 : 1000);
      cases.push_back(c64);
    }
    // Only a handful of distinct values, in random order.
    Case few;
    std::uniform_int_distribution<int> v(0, 3);
    for (std::size_t i = 0; i < n; ++i) few.f.push_back(static_cast<float>(v(rng)));
    cases.push_back(few);
    // Special values: NaN, +-inf, signed zeros.
    Case special;
    special.is_double = true;
    const double pool[] = {std::numeric_limits<double>::quiet_NaN(), INFINITY, -INFINITY, 0.0, -0.0,
                           -100.0, 1.5};
    std::uniform_int_distribution<int> p(0, 6);
    for (std::size_t i = 0; i < n; ++i) special.d.push_back(pool[p(rng)]);
    cases.push_back(special);
    // Sorted, reversed, all equal.
    Case asc, desc, same;
    for (std::size_t i = 0; i < n; ++i) {
      asc.f.push_back(static_cast<float>(i / 3));
      desc.f.push_back(-static_cast<float>(i / 3));
      same.f.push_back(-100.f);
    }
    cases.push_back(asc);
    cases.push_back(desc);
    cases.push_back(same);
  }
  int heapsort_cases = 0;
  for (std::int64_t n : {100, 1000, 4096}) {
    int heapsorts = 0;
    Case adv;
    adv.is_double = true;
    adv.d = adversarial_keys(n, &heapsorts);
    heapsort_cases += heapsorts > 0;
    cases.push_back(adv);
    Case adv32;
    for (double x : adv.d) adv32.f.push_back(static_cast<float>(x));
    cases.push_back(adv32);
  }
  EXPECT_GT(heapsort_cases, 0);

  const auto expected = numpy_reference(cases);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto got = cases[i].is_double ? numpy_argsort(cases[i].d) : numpy_argsort(cases[i].f);
    if (got != expected[i]) {
      ++mismatches;
      ADD_FAILURE() << "case " << i << " (n=" << cases[i].size()
                    << (cases[i].is_double ? ", float64" : ", float32") << ") differs from numpy";
    }
  }
  std::printf("numpy_argsort: %zu arrays compared with numpy, %zu differ\n", cases.size(), mismatches);
}

}  // namespace
