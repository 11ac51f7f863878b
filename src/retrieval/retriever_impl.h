// The state behind blip::Retriever (shared by retriever.cpp and retriever_search.cpp).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "blip/config.h"
#include "blip/models/blip_retrieval.h"
#include "blip/retrieval/itm_scorer.h"
#include "blip/retrieval/text_tensors.h"
#include "blip/retriever.h"
#include "blip/text/tokenizer.h"

namespace blip {

struct Retriever::Impl {
  RetrieverOptions options;
  RetrievalConfig config;
  std::unique_ptr<text::Tokenizer> tokenizer;
  models::BlipRetrieval model{nullptr};
  c10::Device device = c10::Device(c10::kCPU);
  at::ScalarType precision = at::kFloat;
  std::string fingerprint;
  std::string checkpoint_report;
  mutable std::mutex mutex;  // one call at a time: the model's forward state is shared

  int image_size() const { return static_cast<int>(config.image_size); }

  // pre_caption(text, 30) of each text, tokenized to 35 ([CLS] first). `what` names the source.
  retrieval::TextTensors tokenize(const std::vector<std::string>& texts, const std::string& what);
  // Normalized ITC embeddings [T, E] float32 CPU of tokenized texts.
  at::Tensor text_features(const retrieval::TextTensors& tokens);
  // ViT tokens [B, N, D] on the device in the compute precision; a bad file throws naming it.
  at::Tensor image_tokens_of_files(const std::vector<std::string>& paths);
  // Normalized ITC embeddings [B, E] float32 CPU of ViT tokens.
  at::Tensor image_features(const at::Tensor& tokens);
  retrieval::ItmScorer scorer();
};

}  // namespace blip
