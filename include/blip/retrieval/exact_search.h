// Exact nearest-neighbour search over ITC embeddings. BLIP's features are L2-normalized, so the
// inner product is the cosine similarity that its evaluation ranks by (sims_matrix =
// image_feat @ text_feat.t()).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace blip::retrieval {

// One neighbour: a row of the searched matrix and its inner product with the query.
struct Neighbor {
  std::int64_t index = 0;
  float similarity = 0.0f;
};

// Rows of `base` scored per query and chunk (bounds the [queries, chunk] score block).
inline constexpr std::int64_t kExactSearchChunk = 65536;

// The k rows of `base` [N, E] with the largest inner product with each row of `queries` [Q, E]
// (both float32, any device; computed in float32): result[q] holds min(k, N) neighbours by
// decreasing similarity, equal similarities by increasing index, so the order never depends on
// the chunking. Throws blip::Error for mismatched widths, k < 1 or non-float32 inputs.
std::vector<std::vector<Neighbor>> exact_top_k(const at::Tensor& queries, const at::Tensor& base,
                                               std::int64_t k, std::int64_t chunk = kExactSearchChunk);

// Sorts neighbours by decreasing similarity, then increasing index (the order exact_top_k gives).
void sort_neighbors(std::vector<Neighbor>& neighbors);

}  // namespace blip::retrieval
