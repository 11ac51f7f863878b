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
  static float reduce_max(Reg x) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  }
  static float reduce_add(Reg x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
  }
  // As Avx512::exp (fused_attention_avx512.cpp).
  static Reg exp(Reg x) {
    x = _mm256_max_ps(x, set1(-88.3762626647949f));
    x = _mm256_min_ps(x, set1(88.3762626647949f));
    const Reg fx = _mm256_floor_ps(_mm256_fmadd_ps(x, set1(1.44269504088896341f), set1(0.5f)));
    x = _mm256_fnmadd_ps(fx, set1(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, set1(-2.12194440e-4f), x);
    Reg y = set1(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, set1(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, set1(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, set1(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, set1(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, set1(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, set1(1.0f)));
    const __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
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
