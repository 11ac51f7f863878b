// The fused CPU attention kernel (src/models/fused_attention.*) against ATen's matmul, softmax,
// matmul: the kernel directly on the shapes the models give it (shared image keys, per-text
// masks, strided ViT projections, head dims that are not whole vectors, row and key counts off
// the tiles), then the BERT and ViT attention modules with and without it.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "blip/config.h"
#include "blip/models/bert.h"
#include "blip/models/fused_attention.h"
#include "blip/models/vit.h"
#include "models/fused_attention.h"

namespace {

using blip::models::AttentionScale;

// Float rounding of the reordered sums and of the exp polynomial, for outputs of order 1.
constexpr double kTolerance = 2e-6;

bool kernel_available() { return std::string(blip::models::fused_attention_kernel()) != "none"; }

#define SKIP_WITHOUT_KERNEL()                                                                        \
  if (!kernel_available()) GTEST_SKIP() << "this CPU has neither AVX-512 nor AVX2+FMA: no fused kernel"

// ATen's attention in BLIP's order: q [B, Lq, H*d], k/v [Bk, N, H*d], bias [Bb, N] or undefined.
at::Tensor aten_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                          int64_t heads, const AttentionScale& s) {
  auto split = [&](const at::Tensor& x) {
    return x.reshape({x.size(0), x.size(1), heads, x.size(2) / heads}).permute({0, 2, 1, 3});
  };
  at::Tensor scores = at::matmul(split(q) * s.q_scale, split(k).transpose(-1, -2));
  if (s.score_divisor != 1.0f) scores = scores / s.score_divisor;
  if (s.score_multiplier != 1.0f) scores = scores * s.score_multiplier;
  if (bias.defined()) scores = scores + bias.unsqueeze(1).unsqueeze(1);
  const at::Tensor out = at::matmul(scores.softmax(-1), split(v)).permute({0, 2, 1, 3});
  return out.reshape({q.size(0), q.size(1), q.size(2)});
}

struct KernelCase {
  std::string name;
  int64_t batch, rows, keys, heads, dim;
  bool shared_keys;     // k, v of batch 1 (one image's cross-attention keys for many texts)
  int bias;             // 0: none, 1: one bias for all, 2: one per batch (each text's padding)
  bool strided;         // q, k, v narrowed out of one [B, N, 3 * width] projection (ViT's qkv)
  AttentionScale scale;
};

void PrintTo(const KernelCase& c, std::ostream* os) { *os << c.name; }

class FusedKernel : public ::testing::TestWithParam<KernelCase> {};

// Every kernel this CPU runs (AVX-512 machines also run the AVX2 one).
TEST_P(FusedKernel, MatchesAtensOperators) {
  SKIP_WITHOUT_KERNEL();
  torch::NoGradGuard no_grad;
  const KernelCase& c = GetParam();
  at::manual_seed(11);
  const int64_t width = c.heads * c.dim, kb = c.shared_keys ? 1 : c.batch;
  at::Tensor q, k, v;
  if (c.strided) {
    const at::Tensor qkv = at::randn({c.batch, c.rows, 3 * width});
    q = qkv.narrow(2, 0, width), k = qkv.narrow(2, width, width), v = qkv.narrow(2, 2 * width, width);
  } else {
    q = at::randn({c.batch, c.rows, width}), k = at::randn({kb, c.keys, width}), v = at::randn({kb, c.keys, width});
  }
  at::Tensor bias;
  if (c.bias > 0) {
    // BLIP's additive masks: 0 for tokens, -10000 for padding (the last keys of each row).
    const int64_t rows = c.bias == 1 ? 1 : c.batch;
    bias = at::zeros({rows, c.keys});
    for (int64_t b = 0; b < rows; ++b) bias[b].narrow(0, c.keys - 1 - b % 3, 1 + b % 3).fill_(-10000.0);
  }
  const at::Tensor want = aten_attention(q, k, v, bias, c.heads, c.scale);
  const std::vector<std::string> kernels = blip::models::runnable_fused_kernels();
  ASSERT_FALSE(kernels.empty());
  for (const std::string& name : kernels) {
    blip::models::FusedKernelChoice choice(name.c_str());
    ASSERT_TRUE(blip::models::fused_attention_applies(q, k, v, bias, c.heads)) << name;
    const at::Tensor got = blip::models::fused_attention(q, k, v, bias, c.heads, c.scale);
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    EXPECT_LE((got - want).abs().max().item<double>(), kTolerance) << name;
    EXPECT_TRUE(got.isfinite().all().item<bool>()) << name;
  }
}

AttentionScale q_scaled(float s) { return AttentionScale{s, 1.0f, 1.0f}; }
AttentionScale divided(float s) { return AttentionScale{1.0f, s, 1.0f}; }
AttentionScale multiplied(float s) { return AttentionScale{1.0f, 1.0f, s}; }

INSTANTIATE_TEST_SUITE_P(
    Shapes, FusedKernel,
    ::testing::Values(
        // BERT cross-attention: 5 texts x 7 tokens against one image's 577 keys.
        KernelCase{"CrossAttentionSharedKeys", 5, 7, 577, 2, 64, true, 0, false, q_scaled(0.125f)},
        // BERT self-attention: each text its own keys and padding mask.
        KernelCase{"SelfAttentionPerTextMask", 6, 13, 13, 3, 64, false, 2, false, q_scaled(0.125f)},
        // ViT: q, k, v strided views of the qkv projection; 49 rows (a tile and one row), 49 keys.
        KernelCase{"VitStridedRowsOffTile", 2, 49, 49, 2, 64, false, 0, true, q_scaled(0.125f)},
        // The tiny fixture model's BERT (head dim 8, scores divided by sqrt(8)).
        KernelCase{"HeadDimEightDivided", 3, 9, 19, 3, 8, false, 1, false, divided(std::sqrt(8.0f))},
        // head dim 48 (not a power of two): the ViT order, scores multiplied.
        KernelCase{"HeadDim48Multiplied", 2, 100, 37, 2, 48, false, 2, false, multiplied(1.0f / std::sqrt(48.0f))},
        // More rows than one task (96) and keys off the key tile.
        KernelCase{"ManyRowsSharedKeysMasked", 40, 16, 35, 4, 64, true, 1, false, q_scaled(0.125f)}),
    [](const ::testing::TestParamInfo<KernelCase>& info) { return info.param.name; });

TEST(FusedKernelMask, MaskedKeysGetExactlyZeroWeight) {
  SKIP_WITHOUT_KERNEL();
  torch::NoGradGuard no_grad;
  at::manual_seed(12);
  const at::Tensor q = at::randn({2, 5, 64}), k = at::randn({2, 20, 64});
  at::Tensor v = at::randn({2, 20, 64});
  at::Tensor bias = at::zeros({2, 20});
  bias.narrow(1, 12, 8).fill_(-1e9);  // transformers' inverted encoder mask
  const at::Tensor before = blip::models::fused_attention(q, k, v, bias, 1, q_scaled(0.125f));
  v.narrow(1, 12, 8).fill_(1e30f);  // what masked keys carry must not reach the output
  const at::Tensor after = blip::models::fused_attention(q, k, v, bias, 1, q_scaled(0.125f));
  EXPECT_TRUE(at::equal(before, after));
}

// at::parallel_for runs serially in code compiled without -fopenmp (it is a header template):
// the kernel must get torch's threads.
// Our parallel loops take torch's thread count. The count set is one that an OpenMP runtime of
// their own (not the one at::set_num_threads sets) would not pick by itself: neither the cores
// nor OMP_NUM_THREADS. Without -fopenmp the loops run on the calling thread alone: 1.
TEST(FusedKernelThreads, BlocksAreSpreadOverTorchsThreads) {
  const int before = at::get_num_threads();
  const char* env = std::getenv("OMP_NUM_THREADS");
  const int threads = std::max({2, static_cast<int>(std::thread::hardware_concurrency()),
                                env != nullptr ? std::atoi(env) : 0}) + 1;
  at::set_num_threads(threads);
  EXPECT_EQ(blip::models::fused_attention_threads(), threads);
  at::set_num_threads(1);
  EXPECT_EQ(blip::models::fused_attention_threads(), 1);
  at::set_num_threads(before);
}

TEST(FusedKernelChoice, RefusesAKernelThisCpuCannotRun) {
  EXPECT_THROW(blip::models::FusedKernelChoice("avx1024"), std::invalid_argument);
}

TEST(FusedKernelApplies, OnlyFloat32WithoutGradientsAndWithMatchingShapes) {
  SKIP_WITHOUT_KERNEL();
  const at::Tensor q = at::randn({2, 5, 64}), k = at::randn({2, 7, 64}), v = at::randn({2, 7, 64});
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(blip::models::fused_attention_applies(q, k, v, at::Tensor(), 2));
    EXPECT_FALSE(blip::models::fused_attention_applies(q.to(at::kBFloat16), k.to(at::kBFloat16),
                                                       v.to(at::kBFloat16), at::Tensor(), 2));
    EXPECT_FALSE(blip::models::fused_attention_applies(q, k, v.narrow(1, 0, 6), at::Tensor(), 2));
    EXPECT_FALSE(blip::models::fused_attention_applies(q, k, v, at::zeros({2, 6}), 2));
    EXPECT_FALSE(blip::models::fused_attention_applies(q, k, v, at::Tensor(), 3));  // 64 % 3
    EXPECT_FALSE(blip::models::fused_attention_applies(q.transpose(1, 2), k, v, at::Tensor(), 2));
    // No query rows: an empty result, not a division by zero when splitting the rows into tasks.
    EXPECT_EQ(blip::models::fused_attention(q.narrow(1, 0, 0), k, v, at::Tensor(), 2, q_scaled(0.125f)).sizes(),
              (at::IntArrayRef{2, 0, 64}));
    blip::models::UnfusedAttention unfused;
    EXPECT_FALSE(blip::models::fused_attention_enabled());
    EXPECT_FALSE(blip::models::fused_attention_applies(q, k, v, at::Tensor(), 2));
  }
  EXPECT_TRUE(blip::models::fused_attention_enabled());
  const at::Tensor trained = q.clone().requires_grad_(true);
  EXPECT_FALSE(blip::models::fused_attention_applies(trained, k, v, at::Tensor(), 2));  // grad mode on
}

// The modules in eval mode take the kernel and agree with ATen's path (UnfusedAttention).
class FusedModules : public ::testing::TestWithParam<int64_t> {};  // parameter: head_dim

TEST_P(FusedModules, BertSelfAndCrossAttentionAgreeWithAten) {
  SKIP_WITHOUT_KERNEL();
  torch::NoGradGuard no_grad;
  at::manual_seed(13);
  blip::BertConfig c;
  c.num_attention_heads = 2;
  c.hidden_size = 2 * GetParam();
  c.encoder_width = 32;
  blip::models::BertSelfAttention self(c, /*is_cross_attention=*/false);
  blip::models::BertSelfAttention cross(c, /*is_cross_attention=*/true);
  self->eval();
  cross->eval();
  const at::Tensor x = at::randn({4, 9, c.hidden_size});
  const at::Tensor mask =
      blip::models::extended_attention_mask(at::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0}).repeat({4, 1}), at::kFloat);
  const blip::models::CrossAttentionKV image = cross->project_kv(at::randn({1, 50, 32}));

  const at::Tensor fused_self = self->forward(x, mask), fused_cross = cross->forward(x, image, at::Tensor());
  blip::models::UnfusedAttention unfused;
  EXPECT_LE((fused_self - self->forward(x, mask)).abs().max().item<double>(), kTolerance);
  EXPECT_LE((fused_cross - cross->forward(x, image, at::Tensor())).abs().max().item<double>(), kTolerance);
}

TEST_P(FusedModules, VitAttentionAgreesWithAten) {
  SKIP_WITHOUT_KERNEL();
  torch::NoGradGuard no_grad;
  at::manual_seed(14);
  blip::VitConfig c;
  c.heads = 2;
  c.width = 2 * GetParam();
  blip::models::VitAttention attn(c);
  attn->eval();
  const at::Tensor x = at::randn({2, 17, c.width});
  const at::Tensor fused = attn->forward(x);
  blip::models::UnfusedAttention unfused;
  EXPECT_LE((fused - attn->forward(x)).abs().max().item<double>(), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(HeadDims, FusedModules, ::testing::Values(64, 48, 8),
                         [](const ::testing::TestParamInfo<int64_t>& info) {
                           return "head_dim_" + std::to_string(info.param);
                         });

}  // namespace
