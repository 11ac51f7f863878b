// One block of fused CPU attention: softmax(q k^T + key_bias) v for a few query rows of one
// head against all of its keys, in float32, with the scores kept in a workspace buffer (in cache)
// between the two products. The instruction-set-specific kernels live in their own translation units
// (fused_attention_avx512.cpp, fused_attention_avx2.cpp) compiled with their -m flags; this
// header has no templates or library includes so that nothing compiled for a wider instruction
// set can be picked by the linker for other code.
#pragma once

#include <cstdint>

namespace blip::models::fused {

struct AttentionBlock {
  const float* q = nullptr;  // rows x dim, row stride q_stride (floats); the last dimension dense
  std::int64_t q_stride = 0;
  const float* k = nullptr;  // keys x dim
  std::int64_t k_stride = 0;
  const float* v = nullptr;  // keys x dim
  std::int64_t v_stride = 0;
  const float* key_bias = nullptr;  // [keys] added to every row's scores (BLIP's additive mask), or null
  float* out = nullptr;             // rows x dim
  std::int64_t out_stride = 0;
  std::int64_t rows = 0, keys = 0, dim = 0;
  // score = ((q * q_scale) . k) / score_divisor * score_multiplier; callers pass 1 for the
  // factors they do not use, so that each model keeps its own order of operations.
  float q_scale = 1.0f, score_divisor = 1.0f, score_multiplier = 1.0f;
};

// Upper bounds of every kernel's tiles, which size the workspace: floats per vector, query rows
// per tile, output rows per register block.
inline constexpr std::int64_t kMaxVectorWidth = 16;
inline constexpr std::int64_t kMaxRowTile = 48;
inline constexpr std::int64_t kMaxOutRows = 6;

// Floats of workspace one call needs for `keys` keys of width `dim` (any kernel). Defined in
// fused_attention.cpp, out of line: an inline function would also be compiled with the kernels'
// flags, and the linker could keep that copy.
std::int64_t attention_workspace_floats(std::int64_t keys, std::int64_t dim);

// The kernels; each may run only where the CPU has its instruction set (see fused_attention.cpp).
void attend_block_avx512(const AttentionBlock& block, float* workspace);
void attend_block_avx2(const AttentionBlock& block, float* workspace);
// False where the library was built without them (a non-x86 target or compiler).
bool avx512_kernel_built();
bool avx2_kernel_built();

}  // namespace blip::models::fused
