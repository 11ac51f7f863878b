// The fused attention kernel with AVX2 and FMA (8 floats per vector, 16 registers).
// Compiled with -mavx2 -mfma (cmake/BlipTargets.cmake); called only where the
// CPU and the OS support it (fused_attention.cpp).
#include "models/fused_attention_block.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "models/fused_attention_kernel.h"

namespace blip::models::fused {
namespace {

struct Avx2 {
  using Reg = __m256;
  // Scores: 4 keys x 3 vectors of query rows; outputs: 6 rows x 2 vectors (12 accumulators).
  static constexpr int kWidth = 8, kKeyTile = 4, kRowVectors = 3, kOutRows = 6, kOutVectors = 2;
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg set1(float x) { return _mm256_set1_ps(x); }
  static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Reg x) { _mm256_storeu_ps(p, x); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm256_div_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  static Reg min(Reg a, Reg b) { return _mm256_min_ps(a, b); }
  static Reg fnmadd(Reg a, Reg b, Reg c) { return _mm256_fnmadd_ps(a, b, c); }
  static Reg floor(Reg x) { return _mm256_floor_ps(x); }
  // 2^n for integral n in [-127, 128], through the exponent field.
  static Reg pow2(Reg n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
};

}  // namespace

void attend_block_avx2(const AttentionBlock& block, float* workspace) { attend_block<Avx2>(block, workspace); }
bool avx2_kernel_built() { return true; }

}  // namespace blip::models::fused

#else

namespace blip::models::fused {
void attend_block_avx2(const AttentionBlock&, float*) {}
bool avx2_kernel_built() { return false; }
}  // namespace blip::models::fused

#endif
