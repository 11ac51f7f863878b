// BLIP's BertEmbeddings (models/med.py): word + absolute position embeddings, LayerNorm, dropout.
#include <ATen/ATen.h>

#include <string>

#include "blip/error.h"
#include "blip/models/bert.h"
#include "models/reduced_precision.h"

namespace blip::models {

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& config) {
  word_embeddings = register_module(
      "word_embeddings",
      torch::nn::Embedding(torch::nn::EmbeddingOptions(config.vocab_size, config.hidden_size)
                               .padding_idx(config.pad_token_id)));
  position_embeddings = register_module(
      "position_embeddings",
      torch::nn::Embedding(config.max_position_embeddings, config.hidden_size));
  layer_norm = register_module(
      "LayerNorm", torch::nn::LayerNorm(
                       torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
  dropout = register_module("dropout", torch::nn::Dropout(config.hidden_dropout_prob));
  position_ids = register_buffer(
      "position_ids", at::arange(config.max_position_embeddings, at::kLong).unsqueeze(0));
}

at::Tensor BertEmbeddingsImpl::forward(const at::Tensor& input_ids) {
  if (input_ids.dim() != 2 || input_ids.scalar_type() != at::kLong)
    fail("text_encoder", "input_ids must be an int64 tensor [B, L], got " +
                             std::string(c10::toString(input_ids.scalar_type())) + " " +
                             c10::str(input_ids.sizes()));
  const int64_t length = input_ids.size(1);
  if (length > position_ids.size(1))
    fail("text_encoder", "text length " + std::to_string(length) + " exceeds " +
                             std::to_string(position_ids.size(1)) + " position embeddings");
  const int64_t vocab = word_embeddings->weight.size(0);
  // A clear error instead of an index error, on the CPU only: on a GPU the two .item() calls
  // would stall the stream at every forward (#8). There an id beyond the table is CUDA's
  // device-side assert instead.
  if (input_ids.is_cpu() && input_ids.numel() > 0) {
    const auto lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    if (lo < 0 || hi >= vocab)
      fail("text_encoder", "token id out of range [0, " + std::to_string(vocab) + "): " +
                               std::to_string(lo < 0 ? lo : hi));
  }
  at::Tensor embeddings = word_embeddings->forward(input_ids);
  embeddings += position_embeddings->forward(position_ids.narrow(1, 0, length));
  return dropout->forward(layer_norm_fp32(layer_norm, embeddings));
}

}  // namespace blip::models
