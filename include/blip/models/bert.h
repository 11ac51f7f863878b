// BLIP's BERT text encoder "med" (models/med.py BertModel with add_pooling_layer=False).
// Registered names are BLIP's state-dict keys: embeddings.{word_embeddings, position_embeddings,
// LayerNorm, position_ids}, encoder.layer.{i}.{attention.self.{query,key,value},
// attention.output.{dense,LayerNorm}, crossattention.self.{query,key,value},
// crossattention.output.{dense,LayerNorm}, intermediate.dense, output.{dense,LayerNorm}}.
//
// Cross-attention key/value projections of an image can be computed once (cross_attention_kv)
// and reused for many texts (forward_with_cross_kv): the result equals forward() with the image's
// hidden states, without recomputing the K/V projections of every image token for every text.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include "blip/models/linear.h"
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "blip/config.h"

namespace blip::models {

// med.py `mode`: Text skips cross-attention (unimodal text encoder); Multimodal runs it.
enum class TextMode { Text, Multimodal };

// One layer's cross-attention keys and values, split into heads: [B or 1, heads, N_image, head_dim].
// A batch of 1 broadcasts over any number of texts.
struct CrossAttentionKV {
  at::Tensor key;
  at::Tensor value;
};
using CrossAttentionCache = std::vector<CrossAttentionKV>;  // one entry per encoder layer

// Additive masks as BLIP builds them (float, broadcastable to [B, heads, L_q, L_k]):
// self-attention (1 - m) * -10000 (get_extended_attention_mask), cross-attention (1 - m) * -1e9
// (transformers 4.15 invert_attention_mask for float32). `mask` is [B, L] or [B, L_q, L_k].
at::Tensor extended_attention_mask(const at::Tensor& mask, at::ScalarType dtype);
at::Tensor inverted_encoder_mask(const at::Tensor& mask, at::ScalarType dtype);

// Word + absolute position embeddings (no token type), LayerNorm, dropout.
class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit BertEmbeddingsImpl(const BertConfig& config);
  at::Tensor forward(const at::Tensor& input_ids);

  torch::nn::Embedding word_embeddings{nullptr};      // "word_embeddings" (padding_idx = pad id)
  torch::nn::Embedding position_embeddings{nullptr};  // "position_embeddings"
  torch::nn::LayerNorm layer_norm{nullptr};           // "LayerNorm"
  torch::nn::Dropout dropout{nullptr};                // "dropout"
  at::Tensor position_ids;                            // buffer [1, max_positions], int64
};
TORCH_MODULE(BertEmbeddings);

// Scaled dot-product attention; scores are *divided* by sqrt(head_dim). For cross-attention,
// key/value read encoder_width-wide image tokens.
class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  BertSelfAttentionImpl(const BertConfig& config, bool is_cross_attention);

  // Self-attention over `hidden` [B, L, H]; `mask` is an additive mask or undefined.
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& mask);
  // Attention of `hidden` over precomputed keys/values.
  at::Tensor forward(const at::Tensor& hidden, const CrossAttentionKV& kv, const at::Tensor& mask);
  // Self-attention for some positions only: `queries` [B, Lq, H] over the keys/values of all of
  // `states` [B, L, H] (the rows of forward(states, mask) that `queries` are).
  at::Tensor forward_queries(const at::Tensor& queries, const at::Tensor& states, const at::Tensor& mask);
  // Keys and values of `states` [B, N, W], split into heads.
  CrossAttentionKV project_kv(const at::Tensor& states);

  Linear query{nullptr};
  Linear key{nullptr};
  Linear value{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  at::Tensor split_heads(const at::Tensor& x) const;  // [B, L, H] -> [B, heads, L, head_dim]
  at::Tensor merge_heads(const at::Tensor& x) const;  // the inverse, a view where it can be
  // BLIP divides the scores by sqrt(head_dim); when that is a power of two the queries are
  // divided instead, which gives the same bits (src/models/attention_scale.h).
  double score_divisor() const;
  bool queries_scaled() const;
  at::Tensor attend(const at::Tensor& hidden, const at::Tensor& k, const at::Tensor& v,
                    const at::Tensor& mask);
  // attend() for K/V of batch 1 shared by a batch of queries (see bert_attention.cpp).
  at::Tensor attend_shared_kv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& mask) const;
  // Query rows (texts x tokens) per block of the shared-K/V attention: a block's scores for all
  // heads (12 x 256 x 577 floats, 7 MB) stay in cache from the product through the softmax.
  static constexpr int64_t kSharedKvRowBlock = 256;
  int64_t heads_;
  int64_t head_dim_;
};
TORCH_MODULE(BertSelfAttention);

// dense -> dropout -> LayerNorm(x + residual). Used as attention.output and output.
class BertResidualOutputImpl : public torch::nn::Module {
 public:
  BertResidualOutputImpl(int64_t in_features, const BertConfig& config);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& residual);

  Linear dense{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};  // "LayerNorm"
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertResidualOutput);

// "attention" / "crossattention": self (BertSelfAttention) + output.
class BertAttentionImpl : public torch::nn::Module {
 public:
  BertAttentionImpl(const BertConfig& config, bool is_cross_attention);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& mask);
  at::Tensor forward(const at::Tensor& hidden, const CrossAttentionKV& kv, const at::Tensor& mask);
  // Self-attention block for the positions `queries` of `states` (see BertSelfAttention).
  at::Tensor forward_queries(const at::Tensor& queries, const at::Tensor& states, const at::Tensor& mask);

  BertSelfAttention self{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

// "intermediate": dense -> exact GELU.
class BertIntermediateImpl : public torch::nn::Module {
 public:
  explicit BertIntermediateImpl(const BertConfig& config);
  at::Tensor forward(const at::Tensor& x);

  Linear dense{nullptr};
};
TORCH_MODULE(BertIntermediate);

class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const BertConfig& config);

  // Text mode: `cross_kv` is ignored (may be null). Multimodal: `cross_kv` must be given.
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& self_mask, TextMode mode,
                     const CrossAttentionKV* cross_kv, const at::Tensor& cross_mask);
  // forward(...)[:, :1]: only the first position's output, [B, 1, H]; the other positions still
  // serve as self-attention keys and values.
  at::Tensor forward_first_token(const at::Tensor& hidden, const at::Tensor& self_mask, TextMode mode,
                                 const CrossAttentionKV* cross_kv, const at::Tensor& cross_mask);

  bool has_cross_attention() const { return !crossattention.is_empty(); }

  BertAttention attention{nullptr};
  BertAttention crossattention{nullptr};  // null when add_cross_attention is false
  BertIntermediate intermediate{nullptr};
  BertResidualOutput output{nullptr};

 private:
  // Cross-attention (multimodal) and the feed-forward block, after the self-attention block.
  at::Tensor after_self_attention(const at::Tensor& h, TextMode mode, const CrossAttentionKV* cross_kv,
                                  const at::Tensor& cross_mask);
};
TORCH_MODULE(BertLayer);

// The positions the last layer computes: all, or only the first ([CLS] / [ENC]), which is all that
// the ITM head and the ITC projection read; the encoder's output is then [B, 1, H].
enum class OutputTokens { All, First };

// Optional record of intermediate outputs (for comparisons with the reference).
struct BertTrace {
  at::Tensor embeddings;           // [B, L, H]
  std::vector<at::Tensor> layers;  // output of each layer, [B, L, H]
};

// "encoder": the ModuleList "layer". Cross-attention reads either `encoder_hidden_states`
// (projected layer by layer, as BLIP does) or, when `cross_kv` is given, precomputed keys/values.
class BertEncoderImpl : public torch::nn::Module {
 public:
  explicit BertEncoderImpl(const BertConfig& config);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& self_mask, TextMode mode,
                     const at::Tensor& encoder_hidden_states, const CrossAttentionCache* cross_kv,
                     const at::Tensor& cross_mask, BertTrace* trace = nullptr,
                     OutputTokens tokens = OutputTokens::All);

  std::vector<BertLayer> layers;       // the same modules as `layer`, typed
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(BertEncoder);

class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(const BertConfig& config);

  // text_encoder(input_ids, attention_mask, encoder_hidden_states, encoder_attention_mask, mode)
  // -> last_hidden_state [B, L, H]. input_ids / attention_mask are [B, L] (int64 or any numeric
  // mask type). For Multimodal, encoder_hidden_states [B, N, encoder_width] is required and
  // encoder_attention_mask [B, N] is optional (all ones when undefined).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                     TextMode mode = TextMode::Multimodal,
                     const at::Tensor& encoder_hidden_states = {},
                     const at::Tensor& encoder_attention_mask = {}, BertTrace* trace = nullptr,
                     OutputTokens tokens = OutputTokens::All);

  // Every layer's cross-attention keys/values of `encoder_hidden_states` [B, N, W].
  CrossAttentionCache cross_attention_kv(const at::Tensor& encoder_hidden_states);

  // Multimodal forward with precomputed cross-attention keys/values (from cross_attention_kv);
  // a cache of batch 1 serves any number of texts.
  at::Tensor forward_with_cross_kv(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                   const CrossAttentionCache& cross_kv,
                                   const at::Tensor& encoder_attention_mask = {},
                                   BertTrace* trace = nullptr, OutputTokens tokens = OutputTokens::All);

  const BertConfig& config() const { return config_; }

  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};

 private:
  at::Tensor run(const at::Tensor& input_ids, const at::Tensor& attention_mask, TextMode mode,
                 const at::Tensor& encoder_hidden_states, const CrossAttentionCache* cross_kv,
                 const at::Tensor& encoder_attention_mask, BertTrace* trace, OutputTokens tokens);
  BertConfig config_;
};
TORCH_MODULE(BertModel);

}  // namespace blip::models
