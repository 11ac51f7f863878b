#include "blip/retrieval/exact_search.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <string>

#include "blip/error.h"

namespace blip::retrieval {

void sort_neighbors(std::vector<Neighbor>& neighbors) {
  std::sort(neighbors.begin(), neighbors.end(), [](const Neighbor& a, const Neighbor& b) {
    return a.similarity != b.similarity ? a.similarity > b.similarity : a.index < b.index;
  });
}

namespace {

void check_matrix(const at::Tensor& t, const char* what) {
  if (!t.defined() || t.dim() != 2) fail(what, "must be a 2-D matrix of embeddings");
  if (t.scalar_type() != at::kFloat) fail(what, std::string("must be float32, got ") + c10::toString(t.scalar_type()));
}

}  // namespace

std::vector<std::vector<Neighbor>> exact_top_k(const at::Tensor& queries, const at::Tensor& base, std::int64_t k,
                                               std::int64_t chunk) {
  check_matrix(queries, "search queries");
  check_matrix(base, "searched embeddings");
  if (queries.size(1) != base.size(1))
    fail("search queries", "have " + std::to_string(queries.size(1)) + " dimensions, the searched embeddings " +
                               std::to_string(base.size(1)));
  if (k < 1) fail("top-k", "must be at least 1, got " + std::to_string(k));
  if (chunk < 1) fail("search chunk", "must be at least 1, got " + std::to_string(chunk));
  c10::NoGradGuard no_grad;
  const std::int64_t n = base.size(0), q = queries.size(0);
  const std::int64_t keep = std::min(k, n);
  std::vector<std::vector<Neighbor>> result(static_cast<std::size_t>(q));
  if (keep == 0 || q == 0) return result;
  const at::Tensor query = queries.to(base.device()).contiguous();
  // Per chunk, each query keeps its top `keep` from topk; only a query with more rows tied at
  // its last kept value than topk returned (rare: counted vectorized below) scans its row, so
  // that the index tie-break sees all candidates and the order never depends on the chunking.
  for (std::int64_t begin = 0; begin < n; begin += chunk) {
    const std::int64_t end = std::min(n, begin + chunk);
    const at::Tensor sims = at::matmul(query, base.slice(0, begin, end).t()).to(at::kCPU).contiguous();
    const std::int64_t take = std::min(keep, end - begin);
    const auto top = sims.topk(take, /*dim=*/1, /*largest=*/true, /*sorted=*/true);
    const at::Tensor top_values = std::get<0>(top).contiguous();
    const at::Tensor top_rows = std::get<1>(top).contiguous();
    const at::Tensor at_least = (sims >= top_values.narrow(1, take - 1, 1)).sum(1).contiguous();
    const auto values = top_values.accessor<float, 2>();
    const auto rows_of = top_rows.accessor<std::int64_t, 2>();
    const auto counts = at_least.accessor<std::int64_t, 1>();
    const auto all = sims.accessor<float, 2>();
    for (std::int64_t i = 0; i < q; ++i) {
      auto& out = result[static_cast<std::size_t>(i)];
      if (counts[i] == take) {
        for (std::int64_t j = 0; j < take; ++j) out.push_back({begin + rows_of[i][j], values[i][j]});
      } else {
        const float threshold = values[i][take - 1];
        for (std::int64_t j = 0; j < end - begin; ++j)
          if (all[i][j] >= threshold) out.push_back({begin + j, all[i][j]});
      }
      sort_neighbors(out);
      if (static_cast<std::int64_t>(out.size()) > keep) out.resize(static_cast<std::size_t>(keep));
    }
  }
  return result;
}

}  // namespace blip::retrieval
