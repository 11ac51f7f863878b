// BLIP's BertLayer and BertEncoder (models/med.py): self-attention, cross-attention in
// multimodal mode only, then the feed-forward block.
#include <ATen/ATen.h>

#include "blip/error.h"
#include "blip/models/bert.h"

namespace blip::models {

BertIntermediateImpl::BertIntermediateImpl(const BertConfig& config) {
  dense = register_module("dense", Linear(config.hidden_size, config.intermediate_size));
}

at::Tensor BertIntermediateImpl::forward(const at::Tensor& x) {
  return at::gelu(dense->forward(x));  // exact (erf) GELU: ACT2FN["gelu"]
}

BertLayerImpl::BertLayerImpl(const BertConfig& config) {
  attention = register_module("attention", BertAttention(config, /*is_cross_attention=*/false));
  if (config.add_cross_attention)
    crossattention =
        register_module("crossattention", BertAttention(config, /*is_cross_attention=*/true));
  intermediate = register_module("intermediate", BertIntermediate(config));
  output = register_module("output", BertResidualOutput(config.intermediate_size, config));
}

at::Tensor BertLayerImpl::forward(const at::Tensor& hidden, const at::Tensor& self_mask,
                                  TextMode mode, const CrossAttentionKV* cross_kv,
                                  const at::Tensor& cross_mask) {
  return after_self_attention(attention->forward(hidden, self_mask), mode, cross_kv, cross_mask);
}

at::Tensor BertLayerImpl::forward_first_token(const at::Tensor& hidden, const at::Tensor& self_mask,
                                              TextMode mode, const CrossAttentionKV* cross_kv,
                                              const at::Tensor& cross_mask) {
  // A mask per query ([B, 1, Lq, Lk]) keeps the first query's row; a mask per key applies as it is.
  const at::Tensor mask =
      self_mask.defined() && self_mask.dim() == 4 && self_mask.size(2) > 1 ? self_mask.narrow(2, 0, 1) : self_mask;
  return after_self_attention(attention->forward_queries(hidden.narrow(1, 0, 1), hidden, mask), mode, cross_kv,
                              cross_mask);
}

at::Tensor BertLayerImpl::after_self_attention(const at::Tensor& self_out, TextMode mode,
                                               const CrossAttentionKV* cross_kv, const at::Tensor& cross_mask) {
  at::Tensor h = self_out;
  if (mode == TextMode::Multimodal) {
    if (!has_cross_attention())
      fail("text_encoder", "multimodal mode needs a med config with add_cross_attention: true");
    if (cross_kv == nullptr)
      fail("text_encoder", "multimodal mode needs encoder_hidden_states (image embeddings)");
    h = crossattention->forward(h, *cross_kv, cross_mask);
  }
  return output->forward(intermediate->forward(h), h);
}

BertEncoderImpl::BertEncoderImpl(const BertConfig& config) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers.push_back(BertLayer(config));
    layer->push_back(layers.back());
  }
}

at::Tensor BertEncoderImpl::forward(const at::Tensor& hidden, const at::Tensor& self_mask,
                                    TextMode mode, const at::Tensor& encoder_hidden_states,
                                    const CrossAttentionCache* cross_kv,
                                    const at::Tensor& cross_mask, BertTrace* trace, OutputTokens tokens) {
  if (mode == TextMode::Multimodal && cross_kv == nullptr && !encoder_hidden_states.defined())
    fail("text_encoder", "multimodal mode needs encoder_hidden_states (image embeddings)");
  if (cross_kv != nullptr && cross_kv->size() != layers.size())
    fail("text_encoder", "cross-attention cache has " + std::to_string(cross_kv->size()) +
                             " layers, the encoder " + std::to_string(layers.size()));
  at::Tensor h = hidden;
  for (size_t i = 0; i < layers.size(); ++i) {
    const bool first_only = tokens == OutputTokens::First && i + 1 == layers.size();
    auto run_layer = [&](const CrossAttentionKV* kv) {
      return first_only ? layers[i]->forward_first_token(h, self_mask, mode, kv, cross_mask)
                        : layers[i]->forward(h, self_mask, mode, kv, cross_mask);
    };
    if (mode == TextMode::Multimodal && cross_kv == nullptr && layers[i]->has_cross_attention()) {
      // BLIP's path: project the image tokens inside each layer.
      const CrossAttentionKV kv =
          layers[i]->crossattention->self->project_kv(encoder_hidden_states);
      h = run_layer(&kv);
    } else {
      h = run_layer(cross_kv ? &(*cross_kv)[i] : nullptr);
    }
    if (trace) trace->layers.push_back(h);
  }
  return h;
}

}  // namespace blip::models
