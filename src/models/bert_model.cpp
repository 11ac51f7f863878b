// BLIP's BertModel (models/med.py) without pooler: masks, embeddings, encoder.
#include <ATen/ATen.h>

#include <string>

#include "blip/error.h"
#include "blip/models/bert.h"
#include "models/init.h"

namespace blip::models {

namespace {

void check_mask(const at::Tensor& ids, const at::Tensor& mask) {
  if (!mask.defined()) return;
  const bool ok = (mask.dim() == 2 && mask.size(0) == ids.size(0) && mask.size(1) == ids.size(1)) ||
                  (mask.dim() == 3 && mask.size(0) == ids.size(0) && mask.size(1) == ids.size(1) &&
                   mask.size(2) == ids.size(1));
  if (!ok)
    fail("text_encoder", "attention_mask " + c10::str(mask.sizes()) +
                             " does not match input_ids " + c10::str(ids.sizes()));
}

}  // namespace

BertModelImpl::BertModelImpl(const BertConfig& config) : config_(config) {
  if (config.hidden_size <= 0 || config.num_attention_heads <= 0 ||
      config.hidden_size % config.num_attention_heads != 0)
    fail("med config", "hidden_size must be a positive multiple of num_attention_heads");
  embeddings = register_module("embeddings", BertEmbeddings(config));
  encoder = register_module("encoder", BertEncoder(config));

  // BLIP's BertPreTrainedModel._init_weights: N(0, initializer_range) for Linear and Embedding
  // weights (the padding row is *not* zeroed), zero biases, LayerNorm 1/0.
  const double std = config.initializer_range;
  init_embedding_normal(embeddings->word_embeddings, std);
  init_embedding_normal(embeddings->position_embeddings, std);
  for (auto& module : modules(/*include_self=*/false))
    if (auto* linear = module->as<Linear>()) init_linear_normal(*linear, std);
}

at::Tensor BertModelImpl::run(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                              TextMode mode, const at::Tensor& encoder_hidden_states,
                              const CrossAttentionCache* cross_kv,
                              const at::Tensor& encoder_attention_mask, BertTrace* trace,
                              OutputTokens tokens) {
  check_mask(input_ids, attention_mask);
  const int64_t batch = input_ids.size(0);
  auto check_batch = [&](int64_t b, const char* what) {
    if (b != batch && b != 1)
      fail("text_encoder", std::string(what) + " has batch " + std::to_string(b) + ", the texts " +
                               std::to_string(batch) + " (use the same batch, or 1 to broadcast)");
  };
  if (mode == TextMode::Multimodal) {
    if (cross_kv != nullptr) {
      for (const auto& kv : *cross_kv) check_batch(kv.key.size(0), "the cross-attention cache");
    } else {
      check_batch(encoder_hidden_states.size(0), "encoder_hidden_states");
    }
  }
  const at::ScalarType dtype = embeddings->word_embeddings->weight.scalar_type();
  const at::Tensor mask = attention_mask.defined()
                              ? attention_mask
                              : at::ones({input_ids.size(0), input_ids.size(1)},
                                         input_ids.options().dtype(dtype));
  const at::Tensor self_mask = extended_attention_mask(mask, dtype);
  // An all-ones encoder mask adds exact zeros, so "undefined" simply skips it.
  const at::Tensor cross_mask = (mode == TextMode::Multimodal && encoder_attention_mask.defined())
                                    ? inverted_encoder_mask(encoder_attention_mask, dtype)
                                    : at::Tensor();
  at::Tensor h = embeddings->forward(input_ids);
  if (trace) trace->embeddings = h;
  return encoder->forward(h, self_mask, mode, encoder_hidden_states, cross_kv, cross_mask, trace, tokens);
}

at::Tensor BertModelImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                  TextMode mode, const at::Tensor& encoder_hidden_states,
                                  const at::Tensor& encoder_attention_mask, BertTrace* trace,
                                  OutputTokens tokens) {
  if (mode == TextMode::Multimodal) {
    if (!encoder_hidden_states.defined())
      fail("text_encoder", "multimodal mode needs encoder_hidden_states (image embeddings)");
    if (encoder_hidden_states.dim() != 3 || encoder_hidden_states.size(2) != config_.encoder_width)
      fail("text_encoder", "encoder_hidden_states must be [B, N, " +
                               std::to_string(config_.encoder_width) + "], got " +
                               c10::str(encoder_hidden_states.sizes()));
  }
  return run(input_ids, attention_mask, mode, encoder_hidden_states, nullptr,
             encoder_attention_mask, trace, tokens);
}

CrossAttentionCache BertModelImpl::cross_attention_kv(const at::Tensor& encoder_hidden_states) {
  if (encoder_hidden_states.dim() != 3 || encoder_hidden_states.size(2) != config_.encoder_width)
    fail("text_encoder", "encoder_hidden_states must be [B, N, " +
                             std::to_string(config_.encoder_width) + "], got " +
                             c10::str(encoder_hidden_states.sizes()));
  CrossAttentionCache cache;
  for (auto& layer : encoder->layers) {
    if (!layer->has_cross_attention())
      fail("text_encoder", "the med config has no cross-attention (add_cross_attention: false)");
    cache.push_back(layer->crossattention->self->project_kv(encoder_hidden_states));
  }
  return cache;
}

at::Tensor BertModelImpl::forward_with_cross_kv(const at::Tensor& input_ids,
                                                const at::Tensor& attention_mask,
                                                const CrossAttentionCache& cross_kv,
                                                const at::Tensor& encoder_attention_mask,
                                                BertTrace* trace, OutputTokens tokens) {
  return run(input_ids, attention_mask, TextMode::Multimodal, at::Tensor(), &cross_kv,
             encoder_attention_mask, trace, tokens);
}

}  // namespace blip::models
