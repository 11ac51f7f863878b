// The fused attention kernel with AVX-512F (16 floats per vector, 32 registers).
// Compiled with -mavx512f -mfma (cmake/BlipTargets.cmake); called only where the
// CPU and the OS support it (fused_attention.cpp).
#include "models/fused_attention_block.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

#include "models/fused_attention_kernel.h"

namespace blip::models::fused {
namespace {

struct Avx512 {
  using Reg = __m512;
  // Scores: 8 keys x 3 vectors of query rows; outputs: 6 rows x 4 vectors (24 accumulators).
  static constexpr int kWidth = 16, kKeyTile = 8, kRowVectors = 3, kOutRows = 6, kOutVectors = 4;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(float x) { return _mm512_set1_ps(x); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Reg x) { _mm512_storeu_ps(p, x); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm512_div_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
  static Reg min(Reg a, Reg b) { return _mm512_min_ps(a, b); }
  static Reg fnmadd(Reg a, Reg b, Reg c) { return _mm512_fnmadd_ps(a, b, c); }
  static Reg floor(Reg x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-127, 128], through the exponent field.
  static Reg pow2(Reg n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
};

}  // namespace

void attend_block_avx512(const AttentionBlock& block, float* workspace) { attend_block<Avx512>(block, workspace); }
bool avx512_kernel_built() { return true; }

}  // namespace blip::models::fused

#else

namespace blip::models::fused {
void attend_block_avx512(const AttentionBlock&, float*) {}
bool avx512_kernel_built() { return false; }
}  // namespace blip::models::fused

#endif
