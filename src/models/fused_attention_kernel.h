// The fused attention algorithm of fused_attention_block.h, written once over a vector type `V`
// (the ISA translation units define it with AVX-512 or AVX2 intrinsics and include this header;
// nothing else may). Per tile of up to V::kRowVectors * V::kWidth query rows, the rows in the
// vector lanes:
//   qt = the tile's queries transposed (dim x rows), scaled
//   st = k x qt: the scores transposed (keys x rows), key_tile keys at a time, so that keys and
//        values are read where they lie (no copy per call)
//   score transform, + key bias, softmax down each column as ATen computes it (max, exp(x - max),
//        sum, times 1/sum), all rows at once in the lanes
//   out rows = st^T x v, kOutRows rows x kOutVectors vectors of the output at a time
// A head dimension that is not a whole number of vectors goes through padded copies.
#pragma once

#include "models/fused_attention_block.h"

namespace blip::models::fused {
namespace {

constexpr std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

// exp(x) as Cephes' expf computes it (relative error ~1e-7, like the exp ATen uses), from the
// vector type's primitives; 0 below -88.37 (2^-127 is built with a zero exponent field), which the
// masked scores (-1e4, -1e9) reach.
template <class V>
inline typename V::Reg cephes_exp(typename V::Reg x) {
  using Reg = typename V::Reg;
  x = V::min(V::max(x, V::set1(-88.3762626647949f)), V::set1(88.3762626647949f));
  const Reg n = V::floor(V::fmadd(x, V::set1(1.44269504088896341f), V::set1(0.5f)));  // round(x / ln 2)
  x = V::fnmadd(n, V::set1(0.693359375f), x);  // x - n ln 2, in two parts
  x = V::fnmadd(n, V::set1(-2.12194440e-4f), x);
  // A plain array, not an initializer_list: nothing from the standard library in the ISA units.
  constexpr float kPolynomial[] = {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                                   5.0000001201e-1f};
  Reg y = V::set1(1.9875691500e-4f);
  for (const float c : kPolynomial) y = V::fmadd(y, x, V::set1(c));
  y = V::fmadd(y, V::mul(x, x), V::add(x, V::set1(1.0f)));
  return V::mul(y, V::pow2(n));
}

// st[j][c*W ..] = sum_d k[j][d] * qt[d][c*W ..] for J keys and C vectors of query rows.
template <class V, int J, int C>
inline void score_tile(const float* k, std::int64_t k_stride, const float* qt, std::int64_t dim,
                       float* st) {
  constexpr int W = V::kWidth, RT = V::kRowVectors * V::kWidth;
  typename V::Reg acc[J][C];
  for (int j = 0; j < J; ++j)
    for (int c = 0; c < C; ++c) acc[j][c] = V::zero();
  for (std::int64_t d = 0; d < dim; ++d) {
    typename V::Reg qv[C];
    for (int c = 0; c < C; ++c) qv[c] = V::load(qt + d * RT + c * W);
    for (int j = 0; j < J; ++j) {
      const typename V::Reg kb = V::set1(k[j * k_stride + d]);
      for (int c = 0; c < C; ++c) acc[j][c] = V::fmadd(kb, qv[c], acc[j][c]);
    }
  }
  for (int j = 0; j < J; ++j)
    for (int c = 0; c < C; ++c) V::store(st + j * RT + c * W, acc[j][c]);
}

// The last, partial group of keys: J = keys left (1 .. kKeyTile - 1), chosen at run time.
template <class V, int J, int C>
inline void score_tail(std::int64_t left, const float* k, std::int64_t k_stride, const float* qt,
                       std::int64_t dim, float* st) {
  if constexpr (J > 1)
    if (left < J) return score_tail<V, J - 1, C>(left, k, k_stride, qt, dim, st);
  score_tile<V, J, C>(k, k_stride, qt, dim, st);
}

// out[r][c*W ..] = sum_j st[j][r] * v[j][c*W ..] for kOutRows rows and C vectors of the output.
template <class V, int C>
inline void value_tile(const float* st, const float* v, std::int64_t v_stride, std::int64_t keys, float* out,
                       std::int64_t out_stride) {
  constexpr int R = V::kOutRows, W = V::kWidth, RT = V::kRowVectors * V::kWidth;
  typename V::Reg acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = V::zero();
  for (std::int64_t j = 0; j < keys; ++j) {
    typename V::Reg vv[C];
    for (int c = 0; c < C; ++c) vv[c] = V::load(v + j * v_stride + c * W);
    for (int r = 0; r < R; ++r) {
      const typename V::Reg pb = V::set1(st[j * RT + r]);
      for (int c = 0; c < C; ++c) acc[r][c] = V::fmadd(pb, vv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) V::store(out + r * out_stride + c * W, acc[r][c]);
}

template <class V, int C>
inline void value_tiles(std::int64_t vectors, const float* st, const float* v, std::int64_t v_stride,
                        std::int64_t keys, float* out, std::int64_t out_stride) {
  if constexpr (C > 1)
    if (vectors < C) return value_tiles<V, C - 1>(vectors, st, v, v_stride, keys, out, out_stride);
  value_tile<V, C>(st, v, v_stride, keys, out, out_stride);
}

// Scores of one tile of query rows held in C vectors (the tile's qt is filled).
template <class V, int C>
inline void tile_scores(const AttentionBlock& b, const float* k, std::int64_t k_stride, const float* qt,
                        float* st) {
  constexpr int J = V::kKeyTile, RT = V::kRowVectors * V::kWidth;
  std::int64_t j = 0;
  for (; j + J <= b.keys; j += J) score_tile<V, J, C>(k + j * k_stride, k_stride, qt, b.dim, st + j * RT);
  if (j < b.keys) score_tail<V, J - 1, C>(b.keys - j, k + j * k_stride, k_stride, qt, b.dim, st + j * RT);
}

template <class V, int C>
inline void tile_scores_for(std::int64_t vectors, const AttentionBlock& b, const float* k, std::int64_t k_stride,
                            const float* qt, float* st) {
  if constexpr (C > 1)
    if (vectors < C) return tile_scores_for<V, C - 1>(vectors, b, k, k_stride, qt, st);
  tile_scores<V, C>(b, k, k_stride, qt, st);
}

// Each column of st (one query row per lane, `vectors` vectors wide) -> probabilities over the keys.
template <class V>
inline void softmax_columns(const AttentionBlock& b, std::int64_t vectors, float* st) {
  constexpr int W = V::kWidth, RT = V::kRowVectors * V::kWidth;
  const std::int64_t keys = b.keys;
  for (std::int64_t c = 0; c < vectors; ++c) {
    float* col = st + c * W;
    if (b.score_divisor != 1.0f)
      for (std::int64_t j = 0; j < keys; ++j) V::store(col + j * RT, V::div(V::load(col + j * RT), V::set1(b.score_divisor)));
    if (b.score_multiplier != 1.0f)
      for (std::int64_t j = 0; j < keys; ++j)
        V::store(col + j * RT, V::mul(V::load(col + j * RT), V::set1(b.score_multiplier)));
    if (b.key_bias != nullptr)
      for (std::int64_t j = 0; j < keys; ++j) V::store(col + j * RT, V::add(V::load(col + j * RT), V::set1(b.key_bias[j])));
    typename V::Reg m = V::load(col);
    for (std::int64_t j = 1; j < keys; ++j) m = V::max(m, V::load(col + j * RT));
    typename V::Reg sum = V::zero();
    for (std::int64_t j = 0; j < keys; ++j) {
      const typename V::Reg e = cephes_exp<V>(V::sub(V::load(col + j * RT), m));
      V::store(col + j * RT, e);
      sum = V::add(sum, e);
    }
    const typename V::Reg inv = V::div(V::set1(1.0f), sum);
    for (std::int64_t j = 0; j < keys; ++j) V::store(col + j * RT, V::mul(V::load(col + j * RT), inv));
  }
}

template <class V>
void attend_block(const AttentionBlock& b, float* workspace) {
  constexpr int W = V::kWidth, RT = V::kRowVectors * V::kWidth, R = V::kOutRows;
  static_assert(RT <= kMaxRowTile && R <= kMaxOutRows && W <= kMaxVectorWidth, "workspace sized for smaller tiles");
  const std::int64_t keys = b.keys, dim = b.dim, dp = round_up(dim, W);
  float* qt = workspace;     // dim x RT: the tile's queries, transposed and scaled
  float* st = qt + dim * RT;  // keys x RT: the tile's scores, then probabilities, transposed
  // A head dimension short of whole vectors: values and outputs through zero-padded copies.
  const bool padded = dp != dim;
  float* vb = st + keys * RT;  // keys x dp
  float* ot = vb + keys * dp;  // R x dp
  const float* v = b.v;
  std::int64_t v_stride = b.v_stride;
  if (padded) {
    for (std::int64_t j = 0; j < keys; ++j)
      for (std::int64_t d = 0; d < dp; ++d) vb[j * dp + d] = d < dim ? b.v[j * b.v_stride + d] : 0.0f;
    v = vb;
    v_stride = dp;
  }

  for (std::int64_t i0 = 0; i0 < b.rows; i0 += RT) {
    const std::int64_t nr = b.rows - i0 < RT ? b.rows - i0 : RT;
    const std::int64_t vectors = (nr + W - 1) / W;
    for (std::int64_t d = 0; d < dim; ++d)
      for (std::int64_t r = 0; r < vectors * W; ++r)
        qt[d * RT + r] = r < nr ? b.q[(i0 + r) * b.q_stride + d] * b.q_scale : 0.0f;
    tile_scores_for<V, V::kRowVectors>(vectors, b, b.k, b.k_stride, qt, st);
    softmax_columns<V>(b, vectors, st);
    for (std::int64_t r0 = 0; r0 < nr; r0 += R) {
      const std::int64_t rows = nr - r0 < R ? nr - r0 : R;
      float* direct = b.out + (i0 + r0) * b.out_stride;
      const bool through_tile = padded || rows < R;  // the kernel writes R whole rows
      float* o = through_tile ? ot : direct;
      const std::int64_t o_stride = through_tile ? dp : b.out_stride;
      for (std::int64_t d = 0; d < dp; d += V::kOutVectors * W)
        value_tiles<V, V::kOutVectors>((dp - d) / W, st + r0, v + d, v_stride, keys, o + d, o_stride);
      if (through_tile)
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t d = 0; d < dim; ++d) direct[r * b.out_stride + d] = ot[r * dp + d];
    }
  }
}

}  // namespace
}  // namespace blip::models::fused
