// BLIP's retrieval model (models/blip_retrieval.py BLIP_Retrieval). Registered names, and the
// order named_state() lists them in, are those of BLIP's state_dict():
//   temp, image_queue, text_queue, idx_queue, ptr_queue, visual_encoder.*, text_encoder.*,
//   vision_proj.*, text_proj.*, itm_head.*, visual_encoder_m.*, vision_proj_m.*, text_encoder_m.*,
//   text_proj_m.*
// so BLIP checkpoints load unchanged.
#pragma once

#include <torch/nn/module.h>
#include "blip/models/linear.h"
#include <torch/nn/pimpl.h>

#include <string>

#include "blip/config.h"
#include "blip/models/bert.h"
#include "blip/models/vit.h"

namespace blip::models {

// Everything that shapes the model (the rest of a RetrievalConfig only matters to training and
// evaluation loops).
struct BlipRetrievalSpec {
  VitConfig vit;    // online ViT (may use gradient checkpointing)
  VitConfig vit_m;  // momentum ViT (create_vit without checkpointing)
  BertConfig text;  // encoder_width must equal vit.width
  int64_t embed_dim = 256;
  int64_t queue_size = 57600;
  double momentum = 0.995;
  // false builds only what inference needs: no momentum encoders and no queues (half the memory).
  bool with_momentum = true;

  static BlipRetrievalSpec from_config(const RetrievalConfig& config);
};

class BlipRetrievalImpl : public torch::nn::Module {
 public:
  explicit BlipRetrievalImpl(const BlipRetrievalSpec& spec);

  // ---- inference pieces (no grad tracking is done here: wrap calls in torch::NoGradGuard) ----

  // visual_encoder(images): [B, 3, S, S] -> [B, 1 + (S/16)^2, vision_width].
  at::Tensor image_embeds(const at::Tensor& images, VitTrace* trace = nullptr);
  // F.normalize(vision_proj(image_embeds[:, 0, :]), dim=-1): [B, embed_dim].
  at::Tensor image_feat(const at::Tensor& image_embeds);
  // text_encoder(ids, mask, mode='text').last_hidden_state: [B, L, text_width]; with
  // OutputTokens::First only position 0 of the last layer ([B, 1, text_width]), all text_feat reads.
  at::Tensor text_embeds(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                         BertTrace* trace = nullptr, OutputTokens tokens = OutputTokens::All);
  // F.normalize(text_proj(text_embeds[:, 0, :]), dim=-1): [B, embed_dim].
  at::Tensor text_feat(const at::Tensor& text_embeds);
  at::Tensor text_feat(const at::Tensor& input_ids, const at::Tensor& attention_mask);

  // ITM logits [B, 2] = itm_head(text_encoder(ids_enc, mask, image_embeds, image_mask,
  // mode='multimodal')[:, 0]). `ids_with_enc` has [ENC] in column 0 (see with_enc_token);
  // image_embeds is [B, N, vision_width] or [1, N, vision_width] (broadcast over the texts);
  // image_mask [B, N] is optional (BLIP passes all ones, which is the same as none).
  at::Tensor itm_logits(const at::Tensor& ids_with_enc, const at::Tensor& attention_mask,
                        const at::Tensor& image_embeds, const at::Tensor& image_mask = {},
                        BertTrace* trace = nullptr);
  // The same with each layer's cross-attention K/V of an image computed once
  // (cross_attention_kv(image_embeds[i:i+1])) and reused for many texts; without a trace the
  // last layer computes only position 0, the one the head reads (OutputTokens::First).
  CrossAttentionCache cross_attention_kv(const at::Tensor& image_embeds);
  at::Tensor itm_logits(const at::Tensor& ids_with_enc, const at::Tensor& attention_mask,
                        const CrossAttentionCache& image_kv, const at::Tensor& image_mask = {},
                        BertTrace* trace = nullptr);
  // ITM score as evaluation() uses it: the raw logit of class 1, [B].
  static at::Tensor itm_score(const at::Tensor& itm_logits) { return itm_logits.select(-1, 1); }

  // ids with column 0 replaced by `enc_token_id` ([ENC] = 30523 with BLIP's tokenizer); a copy.
  static at::Tensor with_enc_token(const at::Tensor& input_ids, int64_t enc_token_id);

  // ---- momentum encoders and queues (training state) ----

  // copy_params(): momentum weights := online weights; they never require grad.
  void copy_params();
  // _momentum_update(): p_m = p_m * momentum + p * (1 - momentum).
  void momentum_update();
  // _dequeue_and_enqueue(): write the features at columns [ptr, ptr + B) and advance ptr mod Q.
  // Throws blip::Error when queue_size is not a multiple of B (BLIP asserts this).
  void dequeue_and_enqueue(const at::Tensor& image_feat, const at::Tensor& text_feat,
                           const at::Tensor& idxs);

  const BlipRetrievalSpec& spec() const { return spec_; }
  bool has_momentum() const { return spec_.with_momentum; }

  // Registration order = BLIP's state_dict order (own parameter, own buffers, then children).
  at::Tensor temp;         // parameter, 0-d, 0.07
  at::Tensor image_queue;  // buffer [embed_dim, queue_size]
  at::Tensor text_queue;   // buffer [embed_dim, queue_size]
  at::Tensor idx_queue;    // buffer [1, queue_size] int64 (-100 = empty)
  at::Tensor ptr_queue;    // buffer [1] int64
  VisionTransformer visual_encoder{nullptr};
  BertModel text_encoder{nullptr};
  Linear vision_proj{nullptr};
  Linear text_proj{nullptr};
  Linear itm_head{nullptr};
  VisionTransformer visual_encoder_m{nullptr};
  Linear vision_proj_m{nullptr};
  BertModel text_encoder_m{nullptr};
  Linear text_proj_m{nullptr};

 private:
  std::vector<std::pair<torch::nn::Module*, torch::nn::Module*>> model_pairs();
  BlipRetrievalSpec spec_;
};
TORCH_MODULE(BlipRetrieval);

// The state-dict key prefixes of the training-only state (momentum encoders and queues).
const std::vector<std::string>& momentum_state_prefixes();

}  // namespace blip::models
