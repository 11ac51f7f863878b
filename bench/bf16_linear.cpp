// Which way of running BLIP's Linear layers in bf16 is fastest on this CPU with the LibTorch we
// link, measured against fp32 and against plain bf16 / fp32 2048^3 GEMMs timed in the same run.
//
// Shapes: x[M, K] @ W^T + b for the (K, N) of BLIP's layers — (768, 768) attention q/k/v/out,
// (768, 2304) ViT's fused qkv, (768, 3072) MLP fc1, (3072, 768) fc2 — and M = 16 x 577 (ViT: 16
// images of 577 tokens at 384 px), 16 x 256 (an ITM batch) and 1 x 64 (a short query). The input is
// [B, L, K] as the model passes it.
//
// Candidates (all computed from the same fp32 x, W, b; weights converted / packed once, outside the
// timed region, as an inference engine would; input conversions are inside it):
//   fp32-linear       at::linear, fp32 (OpenBLAS sgemm + a bias pass)
//   fp32-mkldnn       at::mkldnn_linear, fp32, weight converted once with to_mkldnn()
//   bf16-linear       at::linear with bf16 tensors (what the model runs in bf16 today)
//   bf16-matmul       at::matmul(x, W^T made contiguous once) + bias
//   bf16-addmm        at::addmm(b, x2d, W^T contiguous)
//   bf16-mm-view      at::mm(x2d, W.t()) + bias (transposed view, no copy)
//   bf16-mkldnn       at::mkldnn_linear(x.to_mkldnn(), W.to_mkldnn() once, b)
//   bf16-conv1x1      the layer as a 1x1 convolution with the weight reordered ONCE into oneDNN's
//                     blocked layout (at::mkldnn_reorder_conv2d_weight) — the only public 1.13 op
//                     that keeps a pre-packed weight — run by at::mkldnn_convolution
//   fp16w-fbgemm      at::fbgemm_linear_fp16_weight (fp16 pre-packed weight, fp32 activations)
// A candidate that the linked LibTorch cannot run is listed as n/a with the reason.
//
// Every candidate's output is checked on sampled rows against a float64 product (error relative to
// the largest reference entry); the program exits 1 when one is wrong beyond its precision's
// tolerance. Usage:
//   bench_bf16_linear [--threads 2] [--reps 5] [--m vit,itm,query] [--only name,name] [--gemm 2048]
// Set ONEDNN_VERBOSE=1 (oneDNN 2.x) to see which kernels run and which reorders happen per call.
// Without AMX (e.g. a VM whose hypervisor hides it: oneDNN then reports "avx512_core_bf16"), one
// vdpbf16ps does as many flops per cycle as fp32 FMAs do, so bf16 cannot beat fp32 on compute there;
// the paths differ by how much of that peak their kernels reach and by packing overheads.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "blas_info.h"
#include "blip/blas_kernels.h"
#include "gemm_reference.h"

namespace {

using Clock = std::chrono::steady_clock;

// Relative to the largest |reference| entry. bf16 keeps 8 significant bits (rounding 2^-9 per
// operand); with K up to 3072 the measured errors are ~5e-3. fp16 keeps 11 bits.
constexpr double kFp32Tolerance = 1e-4;
constexpr double kBf16Tolerance = 3e-2;
constexpr double kFp16Tolerance = 5e-3;
constexpr int64_t kCheckRows = 96;  // rows compared against float64 per shape
// Repetitions grow up to kMaxReps until a candidate has run about this long per shape.
constexpr double kMinSecondsPerCandidate = 0.3;
constexpr int kMaxReps = 300;

struct Batch {
  std::string name;  // vit | itm | query
  int64_t b, l;      // input [b, l, K]: M = b * l
};

struct Layer {
  std::string name;
  int64_t k, n;
};

const std::vector<Batch> kBatches = {{"vit", 16, 577}, {"itm", 16, 256}, {"query", 1, 64}};
const std::vector<Layer> kLayers = {
    {"attn 768x768", 768, 768}, {"qkv 768x2304", 768, 2304}, {"fc1 768x3072", 768, 3072}, {"fc2 3072x768", 3072, 768}};

struct Problem {
  at::Tensor x, w, b;  // fp32: x [B, L, K], w [N, K], b [N]
  int64_t m() const { return x.size(0) * x.size(1); }
  int64_t k() const { return x.size(2); }
  int64_t n() const { return w.size(0); }
};

using Runner = std::function<at::Tensor()>;

struct Candidate {
  std::string name;
  at::ScalarType compute;                       // decides the tolerance
  std::function<Runner(const Problem&)> make;  // converts / packs the weight once
};

at::Tensor bf16(const at::Tensor& t) { return t.to(at::kBFloat16); }

std::vector<Candidate> candidates() {
  std::vector<Candidate> c;
  c.push_back({"fp32-linear", at::kFloat, [](const Problem& p) -> Runner {
                 return [x = p.x, w = p.w, b = p.b] { return at::linear(x, w, b); };
               }});
  c.push_back({"fp32-mkldnn", at::kFloat, [](const Problem& p) -> Runner {
                 const at::Tensor x2 = p.x.reshape({p.m(), p.k()});
                 return [x2, wm = p.w.to_mkldnn(), b = p.b, s = p.x.sizes().vec()]() mutable {
                   return at::mkldnn_linear(x2.to_mkldnn(), wm, b).to_dense().view({s[0], s[1], -1});
                 };
               }});
  c.push_back({"bf16-linear", at::kBFloat16, [](const Problem& p) -> Runner {
                 return [x = bf16(p.x), w = bf16(p.w), b = bf16(p.b)] { return at::linear(x, w, b); };
               }});
  c.push_back({"bf16-matmul", at::kBFloat16, [](const Problem& p) -> Runner {
                 return [x = bf16(p.x), wt = bf16(p.w).t().contiguous(), b = bf16(p.b)] {
                   return at::matmul(x, wt).add_(b);
                 };
               }});
  c.push_back({"bf16-addmm", at::kBFloat16, [](const Problem& p) -> Runner {
                 return [x2 = bf16(p.x).reshape({p.m(), p.k()}), wt = bf16(p.w).t().contiguous(), b = bf16(p.b),
                         s = p.x.sizes().vec()] { return at::addmm(b, x2, wt).view({s[0], s[1], -1}); };
               }});
  c.push_back({"bf16-mm-view", at::kBFloat16, [](const Problem& p) -> Runner {
                 return [x2 = bf16(p.x).reshape({p.m(), p.k()}), w = bf16(p.w), b = bf16(p.b), s = p.x.sizes().vec()] {
                   return at::mm(x2, w.t()).add_(b).view({s[0], s[1], -1});
                 };
               }});
  c.push_back({"bf16-mkldnn", at::kBFloat16, [](const Problem& p) -> Runner {
                 return [x2 = bf16(p.x).reshape({p.m(), p.k()}), wm = bf16(p.w).to_mkldnn(), b = bf16(p.b),
                         s = p.x.sizes().vec()] {
                   return at::mkldnn_linear(x2.to_mkldnn(), wm, b).to_dense().view({s[0], s[1], -1});
                 };
               }});
  c.push_back({"bf16-conv1x1", at::kBFloat16, [](const Problem& p) -> Runner {
                 const int64_t n = p.n(), k = p.k();
                 // Reordered once into the convolution's blocked layout (an opaque mkldnn tensor).
                 at::Tensor packed = at::mkldnn_reorder_conv2d_weight(bf16(p.w).view({n, k, 1, 1}).to_mkldnn(),
                                                                      /*padding=*/{0, 0}, /*stride=*/{1, 1},
                                                                      /*dilation=*/{1, 1}, /*groups=*/1);
                 return [x4 = bf16(p.x).reshape({p.m(), k, 1, 1}), packed, b = bf16(p.b), s = p.x.sizes().vec()] {
                   return at::mkldnn_convolution(x4, packed, b, {0, 0}, {1, 1}, {1, 1}, 1).view({s[0], s[1], -1});
                 };
               }});
  c.push_back({"fp16w-fbgemm", at::kHalf, [](const Problem& p) -> Runner {
                 return [x = p.x, packed = at::fbgemm_pack_gemm_matrix_fp16(p.w), b = p.b] {
                   return at::fbgemm_linear_fp16_weight(x, packed, b);
                 };
               }});
  return c;
}

double tolerance(at::ScalarType t) {
  return t == at::kFloat ? kFp32Tolerance : t == at::kHalf ? kFp16Tolerance : kBf16Tolerance;
}

// Max |y - exact| over sampled rows, relative to max |exact| there.
double relative_error(const at::Tensor& y, const at::Tensor& rows, const at::Tensor& exact, int64_t n) {
  const at::Tensor got = y.reshape({-1, n}).index_select(0, rows).to(at::kDouble);
  return (got - exact).abs().max().item<double>() / exact.abs().max().item<double>();
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

bool wanted(const std::vector<std::string>& list, const std::string& name) {
  return list.empty() || std::find(list.begin(), list.end(), name) != list.end();
}

std::string first_line(const std::string& s) { return s.substr(0, std::min(s.find('\n'), size_t{110})); }

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int reps = 5;
  int64_t gemm_n = 2048;
  std::string batches_arg = "vit,itm,query", only_arg;
  CLI::App app{"bf16 Linear paths vs fp32 on BLIP's layer shapes"};
  app.add_option("--threads", threads, "intra-op threads")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "timed repetitions (best is reported)")->check(CLI::PositiveNumber);
  app.add_option("--m", batches_arg, "batches: vit (16x577), itm (16x256), query (64)");
  app.add_option("--only", only_arg, "comma-separated candidate names (default: all)");
  app.add_option("--gemm", gemm_n, "size of the same-run reference GEMMs (0: skip)");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  at::manual_seed(0);

  const auto blas = blip::blas_kernels();
  std::printf("LibTorch %d.%d, threads=%d, openblas core: %s, oneDNN: %s\n", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR,
              at::get_num_threads(), blas.core.empty() ? "(no OpenBLAS)" : blas.core.c_str(),
              blip::bench::has_onednn() ? "yes" : "no");
  std::printf("bf16 hardware: %s\n", blip::bench::bf16_hardware_summary().c_str());

  const auto batches = split(batches_arg), only = split(only_arg);
  std::vector<Candidate> all;
  for (auto& c : candidates())
    if (wanted(only, c.name)) all.push_back(std::move(c));
  for (const auto& name : only) {
    if (std::none_of(all.begin(), all.end(), [&](const Candidate& c) { return c.name == name; })) {
      std::fprintf(stderr, "bench_bf16_linear: --only: unknown candidate '%s'\n", name.c_str());
      return 2;
    }
  }
  for (const auto& name : batches) {
    if (std::none_of(kBatches.begin(), kBatches.end(), [&](const Batch& b) { return b.name == name; })) {
      std::fprintf(stderr, "bench_bf16_linear: --m: unknown batch '%s' (vit, itm, query)\n", name.c_str());
      return 2;
    }
  }
  if (gemm_n > 0) {
    const auto f32 = blip::bench::measure_gemm(gemm_n, at::kFloat, reps);
    const auto b16 = blip::bench::measure_gemm(gemm_n, at::kBFloat16, reps);
    std::printf("reference %lld^3 GEMM: fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s\n", static_cast<long long>(gemm_n),
                f32.gflops, b16.gflops);
  }
  bool failed = false;
  std::map<std::string, std::string> unavailable;  // candidate -> reason (first failure)

  std::printf("\n%-6s %-14s", "M", "layer");
  for (const auto& c : all) std::printf(" %13s", c.name.c_str());
  std::printf("   (GFLOP/s, best of >= %d; [max rel. error] below)\n", reps);
  for (const auto& batch : kBatches) {
    if (!wanted(batches, batch.name)) continue;
    for (const auto& layer : kLayers) {
      Problem p{at::randn({batch.b, batch.l, layer.k}), at::randn({layer.n, layer.k}) / std::sqrt(double(layer.k)),
                at::randn({layer.n}) * 0.1};
      const int64_t m = p.m();
      const at::Tensor rows = at::linspace(0, double(m - 1), std::min(m, kCheckRows)).to(at::kLong);
      const at::Tensor exact = at::linear(p.x.reshape({m, p.k()}).index_select(0, rows).to(at::kDouble),
                                          p.w.to(at::kDouble), p.b.to(at::kDouble));
      std::vector<Runner> run(all.size());
      std::vector<double> best(all.size(), 1e30), err(all.size(), -1);
      for (size_t i = 0; i < all.size(); ++i) {
        if (unavailable.count(all[i].name)) continue;
        try {
          run[i] = all[i].make(p);
          err[i] = relative_error(run[i](), rows, exact, p.n());  // also the warm-up call
        } catch (const std::exception& e) {
          unavailable[all[i].name] = first_line(e.what());
          run[i] = nullptr;
          continue;
        }
        if (!(err[i] <= tolerance(all[i].compute))) {
          std::fprintf(stderr, "bench_bf16_linear: FAILED: %s on M=%lld %s: error %.2e > %.0e\n", all[i].name.c_str(),
                       static_cast<long long>(m), layer.name.c_str(), err[i], tolerance(all[i].compute));
          failed = true;
        }
      }
      // Round-robin over the candidates, so that load changes on a shared machine hit all alike;
      // short products get more repetitions (a preempted millisecond call says nothing).
      int rounds = reps;
      for (int r = 0; r < rounds; ++r) {
        for (size_t i = 0; i < all.size(); ++i) {
          if (!run[i]) continue;
          const auto t0 = Clock::now();
          const at::Tensor y = run[i]();
          const double t = std::chrono::duration<double>(Clock::now() - t0).count();
          best[i] = std::min(best[i], t);
          if (r == 0) rounds = std::max(rounds, std::min(kMaxReps, static_cast<int>(kMinSecondsPerCandidate / t)));
        }
      }
      const double flop = 2.0 * double(m) * double(layer.k) * double(layer.n);
      std::printf("%-6lld %-14s", static_cast<long long>(m), layer.name.c_str());
      for (size_t i = 0; i < all.size(); ++i) {
        if (run[i])
          std::printf(" %13.1f", flop / best[i] / 1e9);
        else
          std::printf(" %13s", "n/a");
      }
      std::printf("\n%-21s", "");
      for (size_t i = 0; i < all.size(); ++i) {
        if (run[i])
          std::printf("  [%9.1e]", err[i]);
        else
          std::printf(" %13s", "");
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  for (const auto& [name, reason] : unavailable) std::printf("n/a %s: %s\n", name.c_str(), reason.c_str());
  if (failed) {
    std::fprintf(stderr, "bench_bf16_linear: FAILED: a path is wrong beyond its precision's tolerance\n");
    return 1;
  }
  return 0;
}
