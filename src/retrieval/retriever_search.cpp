// blip::Retriever's searches: ITC candidates (exact, or from a FAISS index), then optionally
// BLIP's ITM rerank of the top candidates, ranked by itm_logit[:, 1] + itc as evaluation() ranks.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>

#include "blip/error.h"
#include "blip/retrieval/exact_search.h"
#include "blip/retrieval/faiss_index.h"
#include "blip/retrieval/itc_features.h"
#include "blip/retriever.h"
#include "retrieval/retriever_impl.h"

namespace blip {
namespace {

using retrieval::Neighbor;
using retrieval::QueryResults;
using retrieval::ResultKind;
using retrieval::SearchHit;

void check_search(const SearchOptions& o) {
  if (o.k < 1) fail("search k", "must be at least 1, got " + std::to_string(o.k));
  if (o.rerank < 0) fail("search rerank", "must be 0 or more, got " + std::to_string(o.rerank));
}

// The fingerprint without its precision field: an index embedded in fp32 may be searched in bf16
// (the same model), but not with another model's or image size's embeddings.
std::string model_part(const std::string& fingerprint) {
  std::string out;
  std::size_t start = 0;
  while (start <= fingerprint.size()) {
    const std::size_t end = std::min(fingerprint.find(';', start), fingerprint.size());
    const std::string field = fingerprint.substr(start, end - start);
    if (field.rfind("precision=", 0) != 0) out += field + ";";
    start = end + 1;
  }
  return out;
}

void check_index(const retrieval::ImageIndex& index, const std::string& fingerprint, std::int64_t dim) {
  retrieval::check_image_index(index, "image index");
  if (index.embeddings.size(1) != dim)
    fail("image index", "has " + std::to_string(index.embeddings.size(1)) + "-d embeddings, the model gives " +
                            std::to_string(dim));
  if (model_part(index.fingerprint) != model_part(fingerprint))
    fail("image index", "was built with another model or image size (index fingerprint " + index.fingerprint +
                            ", this model " + fingerprint + "): index the images again with this model");
}

std::vector<std::vector<Neighbor>> candidates(const at::Tensor& queries, const at::Tensor& base, std::int64_t n,
                                              const retrieval::FaissIndex* approximate) {
  if (!approximate) return retrieval::exact_top_k(queries, base, n);
  if (approximate->size() != base.size(0))
    fail("FAISS index", "holds " + std::to_string(approximate->size()) + " vectors, the image index " +
                            std::to_string(base.size(0)) + ": rebuild it");
  return approximate->search(queries, n);
}

// Hits from ITC candidates (by decreasing similarity) with ITM scores for the first itm.size():
// those are ranked by itm + itc above the others, which keep their ITC order.
QueryResults rank(std::string query, bool image_query, ResultKind kind, const std::vector<Neighbor>& cands,
                  const std::vector<float>& itm, std::int64_t k, const std::function<std::string(std::int64_t)>& label) {
  QueryResults out;
  out.query = std::move(query);
  out.image_query = image_query;
  out.kind = kind;
  std::vector<SearchHit> hits;
  for (std::size_t i = 0; i < cands.size(); ++i) {
    SearchHit h;
    h.item = cands[i].index;
    h.itc = cands[i].similarity;
    h.score = h.itc;
    if (i < itm.size()) {
      h.itm = itm[i];
      h.score = retrieval::combined_score(itm[i], h.itc);
    }
    hits.push_back(h);
  }
  const auto reranked = hits.begin() + static_cast<std::ptrdiff_t>(std::min(itm.size(), hits.size()));
  std::stable_sort(hits.begin(), reranked, [](const SearchHit& a, const SearchHit& b) { return a.score > b.score; });
  if (static_cast<std::int64_t>(hits.size()) > k) hits.resize(static_cast<std::size_t>(k));
  for (std::size_t i = 0; i < hits.size(); ++i) {
    hits[i].rank = static_cast<std::int64_t>(i) + 1;
    hits[i].label = label(hits[i].item);
  }
  out.hits = std::move(hits);
  return out;
}

std::vector<std::int64_t> first_rows(const std::vector<Neighbor>& cands, std::int64_t n) {
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < cands.size() && static_cast<std::int64_t>(i) < n; ++i) rows.push_back(cands[i].index);
  return rows;
}

std::vector<float> to_floats(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

std::vector<QueryResults> Retriever::search(const std::vector<std::string>& texts, const retrieval::ImageIndex& index,
                                            const SearchOptions& options) const {
  check_search(options);
  const std::lock_guard<std::mutex> lock(impl_->mutex);
  c10::NoGradGuard no_grad;
  check_index(index, impl_->fingerprint, embed_dim());
  std::vector<QueryResults> out;
  if (texts.empty()) return out;
  const retrieval::TextTensors tokens = impl_->tokenize(texts, "query");
  const at::Tensor feats = impl_->text_features(tokens);
  const auto cands = candidates(feats, index.embeddings, std::max(options.k, options.rerank), options.approximate);
  const retrieval::ItmTexts itm_texts(tokens, impl_->tokenizer->enc_id());
  const auto label = [&](std::int64_t i) { return index.files[static_cast<std::size_t>(i)].path; };
  for (std::size_t q = 0; q < texts.size(); ++q) {
    std::vector<float> itm;
    const std::vector<std::int64_t> rows = first_rows(cands[q], options.rerank);
    if (!rows.empty()) {
      at::Tensor image_tokens;
      if (index.has_tokens()) {
        image_tokens = index.tokens.index_select(0, at::tensor(rows, at::kLong)).to(impl_->device, impl_->precision);
      } else {
        std::vector<std::string> paths;
        for (const std::int64_t r : rows) paths.push_back(label(r));
        image_tokens = impl_->image_tokens_of_files(paths);
      }
      itm = to_floats(impl_->scorer().text_scores(itm_texts, static_cast<std::int64_t>(q), image_tokens));
    }
    out.push_back(rank(texts[q], false, ResultKind::kImage, cands[q], itm, options.k, label));
  }
  return out;
}

QueryResults Retriever::search(const std::string& text, const retrieval::ImageIndex& index, std::int64_t k,
                               std::int64_t rerank) const {
  SearchOptions o;
  o.k = k;
  o.rerank = rerank;
  return search(std::vector<std::string>{text}, index, o).at(0);
}

std::vector<QueryResults> Retriever::search_captions(const std::vector<std::string>& image_paths,
                                                     const std::vector<std::string>& captions,
                                                     const SearchOptions& options) const {
  check_search(options);
  const std::lock_guard<std::mutex> lock(impl_->mutex);
  c10::NoGradGuard no_grad;
  std::vector<QueryResults> out;
  if (image_paths.empty()) return out;
  if (captions.empty()) fail("caption search", "no captions to search");
  const retrieval::TextTensors tokens = impl_->tokenize(captions, "caption");
  const at::Tensor caption_feats = impl_->text_features(tokens);
  const retrieval::ItmTexts itm_texts(tokens, impl_->tokenizer->enc_id());
  const auto label = [&](std::int64_t i) { return captions[static_cast<std::size_t>(i)]; };
  for (const std::string& path : image_paths) {
    const at::Tensor image_tokens = impl_->image_tokens_of_files({path});
    const auto cands =
        retrieval::exact_top_k(impl_->image_features(image_tokens), caption_feats, std::max(options.k, options.rerank));
    std::vector<float> itm;
    const std::vector<std::int64_t> rows = first_rows(cands[0], options.rerank);
    if (!rows.empty()) itm = to_floats(impl_->scorer().image_scores(image_tokens[0], itm_texts, rows));
    out.push_back(rank(path, true, ResultKind::kCaption, cands[0], itm, options.k, label));
  }
  return out;
}

QueryResults Retriever::search_captions(const std::string& image_path, const std::vector<std::string>& captions,
                                        std::int64_t k, std::int64_t rerank) const {
  SearchOptions o;
  o.k = k;
  o.rerank = rerank;
  return search_captions(std::vector<std::string>{image_path}, captions, o).at(0);
}

std::vector<QueryResults> Retriever::search_similar_images(const std::vector<std::string>& image_paths,
                                                           const retrieval::ImageIndex& index,
                                                           const SearchOptions& options) const {
  check_search(options);
  const std::lock_guard<std::mutex> lock(impl_->mutex);
  c10::NoGradGuard no_grad;
  check_index(index, impl_->fingerprint, embed_dim());
  std::vector<QueryResults> out;
  const auto label = [&](std::int64_t i) { return index.files[static_cast<std::size_t>(i)].path; };
  for (const std::string& path : image_paths) {
    const at::Tensor feat = impl_->image_features(impl_->image_tokens_of_files({path}));
    const auto cands = candidates(feat, index.embeddings, options.k, options.approximate);
    out.push_back(rank(path, true, ResultKind::kImage, cands[0], {}, options.k, label));
  }
  return out;
}

QueryResults Retriever::search_similar_images(const std::string& image_path, const retrieval::ImageIndex& index,
                                              std::int64_t k) const {
  SearchOptions o;
  o.k = k;
  return search_similar_images(std::vector<std::string>{image_path}, index, o).at(0);
}

}  // namespace blip
