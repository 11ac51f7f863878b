#include "blip/retrieval/image_embedding.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

#include "blip/data/image_loader.h"
#include "blip/dist/distributed.h"
#include "blip/error.h"
#include "blip/models/blip_retrieval.h"
#include "blip/retrieval/itc_features.h"
#include "blip/retrieval/precision.h"

namespace blip::retrieval {
namespace {

// Bump when transform_test or the embedding changes in a way that changes the numbers.
constexpr const char* kPreprocessing = "transform_test:bicubic,clip-mean-std:v1";

// Embeds this process's share: rows `mine` of `paths`.
EmbeddedImages embed_local(models::BlipRetrievalImpl& model, const std::vector<std::string>& paths,
                           const EmbedImagesOptions& o) {
  EmbeddedImages out;
  const auto n = static_cast<std::int64_t>(paths.size());
  out.ok.assign(paths.size(), 0);
  data::ImageLoaderOptions lo;
  lo.batch_size = o.image_batch;
  lo.num_workers = o.loader_workers;
  lo.skip_bad_images = true;
  lo.report_skipped = false;  // the caller reports `failed`
  data::ImageBatchLoader loader(paths, data::transform_test_loader(o.image_size), lo);
  std::vector<at::Tensor> feats, tokens;
  std::vector<std::int64_t> rows;
  std::int64_t done = 0;
  data::ImageBatch batch;
  c10::NoGradGuard no_grad;
  while (loader.next(batch)) {
    const at::Tensor t = image_tokens(model, batch.images, o.device, o.precision);
    feats.push_back(itc_image_feat(model, t).to(at::kCPU));
    if (o.keep_tokens) tokens.push_back(t.to(at::kCPU, at::kHalf));
    rows.insert(rows.end(), batch.indices.begin(), batch.indices.end());
    done = rows.size() + loader.skipped().size();
    if (o.on_progress) o.on_progress(std::min(done, n), n);
  }
  for (const auto& f : loader.skipped()) out.failed.push_back({f.index, f.path, f.reason});
  if (o.on_progress && done < n) o.on_progress(n, n);
  const at::Tensor index = at::tensor(rows, at::kLong);
  if (!feats.empty()) {
    const at::Tensor all = at::cat(feats);
    out.embeddings = at::zeros({n, all.size(1)}, at::kFloat);
    out.embeddings.index_copy_(0, index, all);
    if (o.keep_tokens) {
      const at::Tensor all_tokens = at::cat(tokens);
      out.tokens = at::zeros({n, all_tokens.size(1), all_tokens.size(2)}, at::kHalf);
      out.tokens.index_copy_(0, index, all_tokens);
    }
  } else {  // nothing embedded: zero rows of the right widths (a rank's share may be all bad)
    out.embeddings = at::zeros({n, model.spec().embed_dim}, at::kFloat);
    if (o.keep_tokens) out.tokens = at::zeros({n, model.spec().vit.num_patches() + 1, model.spec().vit.width}, at::kHalf);
  }
  for (const std::int64_t r : rows) out.ok[static_cast<std::size_t>(r)] = 1;
  return out;
}

std::uint64_t mix(std::uint64_t h, const void* data, std::size_t n) {
  // FNV-1a over 64-bit words (then the tail bytes): fast enough to hash a checkpoint per run.
  constexpr std::uint64_t kPrime = 0x100000001b3ULL;
  const auto* p = static_cast<const unsigned char*>(data);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * kPrime;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * kPrime;
  return h;
}

}  // namespace

EmbeddedImages embed_image_files(models::BlipRetrievalImpl& model, const std::vector<std::string>& paths,
                                 const EmbedImagesOptions& o) {
  if (o.image_size < 1) fail("image_size", "must be positive to embed images, got " + std::to_string(o.image_size));
  const int world = o.dist ? o.dist->world_size() : 1;
  // Every rank holds the same list, so all take this early return together (no collective).
  if (world <= 1 || paths.empty()) return embed_local(model, paths, o);

  // Rank r takes rows r, r + W, ...; the gather returns them rank by rank, so row i of the whole
  // list is row i / W of rank i % W's share.
  const int rank = o.dist->rank();
  std::vector<std::string> mine;
  for (std::size_t i = static_cast<std::size_t>(rank); i < paths.size(); i += static_cast<std::size_t>(world))
    mine.push_back(paths[i]);
  EmbeddedImages local = embed_local(model, mine, o);
  std::vector<std::int64_t> counts;
  const at::Tensor feats = o.dist->all_gather(local.embeddings.to(o.device), &counts).to(at::kCPU);
  const at::Tensor ok_local = at::from_blob(local.ok.data(), {static_cast<std::int64_t>(local.ok.size())}, at::kChar)
                                  .to(at::kInt);
  const at::Tensor ok_all = o.dist->all_gather(ok_local.to(o.device)).to(at::kCPU);
  at::Tensor tokens_all;
  if (o.keep_tokens) tokens_all = o.dist->all_gather(local.tokens.to(o.device)).to(at::kCPU);

  // Gathered row of path i.
  std::vector<std::int64_t> offset(static_cast<std::size_t>(world) + 1, 0);
  for (int r = 0; r < world; ++r) offset[r + 1] = offset[r] + counts[static_cast<std::size_t>(r)];
  std::vector<std::int64_t> order(paths.size());
  for (std::size_t i = 0; i < paths.size(); ++i) order[i] = offset[i % world] + static_cast<std::int64_t>(i / world);
  const at::Tensor gather_rows = at::tensor(order, at::kLong);
  EmbeddedImages out;
  out.embeddings = feats.index_select(0, gather_rows);
  if (o.keep_tokens) out.tokens = tokens_all.index_select(0, gather_rows);
  const at::Tensor ok = ok_all.index_select(0, gather_rows).contiguous();
  out.ok.assign(ok.data_ptr<int>(), ok.data_ptr<int>() + ok.numel());
  // Every rank's failure reasons, gathered as text: "<row in the whole list>\t<reason>\n" each.
  std::string mine_text = "\n";  // never empty: the gather then never moves zero bytes
  for (const auto& f : local.failed) {
    std::string reason = f.reason;
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    mine_text += std::to_string(f.row * world + rank) + "\t" + reason + "\n";
  }
  const at::Tensor text_local = at::from_blob(mine_text.data(), {static_cast<std::int64_t>(mine_text.size())}, at::kByte);
  const at::Tensor text_all = o.dist->all_gather(text_local.to(o.device)).to(at::kCPU).contiguous();
  const std::string all_text(reinterpret_cast<const char*>(text_all.data_ptr<std::uint8_t>()),
                             static_cast<std::size_t>(text_all.numel()));
  std::map<std::int64_t, std::string> reasons;
  for (std::size_t start = 0; start < all_text.size();) {
    const std::size_t tab = all_text.find('\t', start), end = all_text.find('\n', start);
    if (tab > end) {  // an empty line
      start = end + 1;
      continue;
    }
    reasons[std::stoll(all_text.substr(start, tab - start))] = all_text.substr(tab + 1, end - tab - 1);
    start = end + 1;
  }
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (out.ok[i]) continue;
    const auto it = reasons.find(static_cast<std::int64_t>(i));
    out.failed.push_back({static_cast<std::int64_t>(i), paths[i],
                          it != reasons.end() ? it->second : paths[i] + ": could not be embedded"});
  }
  return out;
}

std::string model_fingerprint(const models::BlipRetrievalImpl& model, int image_size, at::ScalarType precision) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV offset basis
  const auto hash_tensors = [&](const auto& named) {
    for (const auto& item : named) {
      h = mix(h, item.key().data(), item.key().size());
      const at::Tensor t = item.value().detach().to(at::kCPU).contiguous();
      const auto sizes = t.sizes();
      h = mix(h, sizes.data(), sizes.size() * sizeof(std::int64_t));
      h = mix(h, t.data_ptr(), t.numel() * t.element_size());
    }
  };
  // Parameters only: the buffers are constants (position ids) or training state (the queues).
  hash_tensors(model.named_parameters(/*recurse=*/true));
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("weights=") + hex + ";image_size=" + std::to_string(image_size) + ";precision=" +
         precision_name(precision) + ";preprocessing=" + kPreprocessing;
}

}  // namespace blip::retrieval
