// BLIP_Retrieval (models/blip_retrieval.py): encoders, projections, ITM head, momentum copies
// and feature queues, with the inference entry points evaluation() uses.
#include "blip/models/blip_retrieval.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <string>

#include "blip/error.h"
#include "blip/models/random_init.h"

namespace blip::models {

namespace {
constexpr double kInitialTemp = 0.07;
constexpr int64_t kEmptyQueueIdx = -100;

// F.normalize(x, dim): x / max(||x||_2, eps) with eps = 1e-12.
at::Tensor normalize(const at::Tensor& x, int64_t dim) {
  constexpr double kEps = 1e-12;
  return x / x.norm(2, {dim}, /*keepdim=*/true).clamp_min(kEps).expand_as(x);
}
at::Tensor normalize_rows(const at::Tensor& x) { return normalize(x, -1); }
}  // namespace

BlipRetrievalSpec BlipRetrievalSpec::from_config(const RetrievalConfig& config) {
  BlipRetrievalSpec spec;
  spec.vit = config.vit_config();
  spec.vit_m = config.vit_m_config();
  spec.text = config.med;
  spec.text.encoder_width = spec.vit.width;  // BLIP: med_config.encoder_width = vision_width
  spec.embed_dim = config.embed_dim;
  spec.queue_size = config.queue_size;
  spec.momentum = config.momentum;
  return spec;
}

BlipRetrievalImpl::BlipRetrievalImpl(const BlipRetrievalSpec& spec) : spec_(spec) {
  if (spec.text.encoder_width != spec.vit.width)
    fail("BLIP retrieval model", "text encoder_width (" + std::to_string(spec.text.encoder_width) +
                                     ") differs from the ViT width (" +
                                     std::to_string(spec.vit.width) + ")");
  if (spec.embed_dim <= 0 || spec.queue_size <= 0)
    fail("BLIP retrieval model", "embed_dim and queue_size must be positive");
  const int64_t vision_width = spec.vit.width;
  const int64_t text_width = spec.text.hidden_size;

  temp = register_parameter("temp", at::full({}, kInitialTemp, at::kFloat));
  if (spec.with_momentum) {
    // BLIP fills the queues with normalised random features; a checkpoint overwrites them.
    auto random_queue = [&] {
      if (!random_init_enabled()) return at::empty({spec.embed_dim, spec.queue_size});
      return normalize(at::randn({spec.embed_dim, spec.queue_size}), 0);
    };
    image_queue = register_buffer("image_queue", random_queue());
    text_queue = register_buffer("text_queue", random_queue());
    idx_queue = register_buffer("idx_queue", at::full({1, spec.queue_size}, kEmptyQueueIdx, at::kLong));
    ptr_queue = register_buffer("ptr_queue", at::zeros({1}, at::kLong));
  }
  visual_encoder = register_module("visual_encoder", VisionTransformer(spec.vit));
  text_encoder = register_module("text_encoder", BertModel(spec.text));
  vision_proj = register_module("vision_proj", Linear(vision_width, spec.embed_dim));
  text_proj = register_module("text_proj", Linear(text_width, spec.embed_dim));
  itm_head = register_module("itm_head", Linear(text_width, 2));
  if (spec.with_momentum) {
    visual_encoder_m = register_module("visual_encoder_m", VisionTransformer(spec.vit_m));
    vision_proj_m = register_module("vision_proj_m", Linear(vision_width, spec.embed_dim));
    text_encoder_m = register_module("text_encoder_m", BertModel(spec.text));
    text_proj_m = register_module("text_proj_m", Linear(text_width, spec.embed_dim));
    copy_params();
  }
}

std::vector<std::pair<torch::nn::Module*, torch::nn::Module*>> BlipRetrievalImpl::model_pairs() {
  if (!spec_.with_momentum) return {};
  return {{visual_encoder.get(), visual_encoder_m.get()},
          {vision_proj.get(), vision_proj_m.get()},
          {text_encoder.get(), text_encoder_m.get()},
          {text_proj.get(), text_proj_m.get()}};
}

void BlipRetrievalImpl::copy_params() {
  torch::NoGradGuard no_grad;
  for (auto [online, momentum] : model_pairs()) {
    auto p = online->parameters(), pm = momentum->parameters();
    for (size_t i = 0; i < p.size(); ++i) {
      // Without random init the online weights are unset (and their pages untouched): the
      // checkpoint supplies both encoders, and copying would only fault the pages in twice.
      if (random_init_enabled()) pm[i].copy_(p[i]);
      pm[i].set_requires_grad(false);
    }
  }
}

void BlipRetrievalImpl::momentum_update() {
  torch::NoGradGuard no_grad;
  const double m = spec_.momentum;
  for (auto [online, momentum] : model_pairs()) {
    auto p = online->parameters(), pm = momentum->parameters();
    for (size_t i = 0; i < p.size(); ++i) pm[i].copy_(pm[i] * m + p[i] * (1.0 - m));
  }
}

void BlipRetrievalImpl::dequeue_and_enqueue(const at::Tensor& image_feat,
                                            const at::Tensor& text_feat, const at::Tensor& idxs) {
  if (!spec_.with_momentum) fail("BLIP retrieval model", "built without queues (with_momentum = false)");
  torch::NoGradGuard no_grad;
  const int64_t batch = image_feat.size(0);
  if (batch <= 0 || spec_.queue_size % batch != 0)
    fail("BLIP retrieval model", "queue_size " + std::to_string(spec_.queue_size) +
                                     " is not a multiple of the batch size " + std::to_string(batch));
  const int64_t ptr = ptr_queue[0].item<int64_t>();
  if (ptr < 0 || ptr % batch != 0)
    fail("BLIP retrieval model", "ptr_queue " + std::to_string(ptr) +
                                     " is not a multiple of the batch size " + std::to_string(batch) +
                                     " (the queue was filled with another global batch size)");
  image_queue.narrow(1, ptr, batch).copy_(image_feat.t());
  text_queue.narrow(1, ptr, batch).copy_(text_feat.t());
  idx_queue.narrow(1, ptr, batch).copy_(idxs.reshape({-1, 1}).t());
  ptr_queue[0] = (ptr + batch) % spec_.queue_size;
}

at::Tensor BlipRetrievalImpl::image_embeds(const at::Tensor& images, VitTrace* trace) {
  return visual_encoder->forward(images, trace);
}

at::Tensor BlipRetrievalImpl::image_feat(const at::Tensor& image_embeds) {
  return normalize_rows(vision_proj->forward(image_embeds.select(1, 0)));
}

at::Tensor BlipRetrievalImpl::text_embeds(const at::Tensor& input_ids,
                                          const at::Tensor& attention_mask, BertTrace* trace,
                                          OutputTokens tokens) {
  return text_encoder->forward(input_ids, attention_mask, TextMode::Text, {}, {}, trace, tokens);
}

at::Tensor BlipRetrievalImpl::text_feat(const at::Tensor& text_embeds) {
  return normalize_rows(text_proj->forward(text_embeds.select(1, 0)));
}

at::Tensor BlipRetrievalImpl::text_feat(const at::Tensor& input_ids,
                                        const at::Tensor& attention_mask) {
  return text_feat(text_embeds(input_ids, attention_mask));
}

at::Tensor BlipRetrievalImpl::itm_logits(const at::Tensor& ids_with_enc,
                                         const at::Tensor& attention_mask,
                                         const at::Tensor& image_embeds,
                                         const at::Tensor& image_mask, BertTrace* trace) {
  at::Tensor images = image_embeds;
  if (images.dim() == 3 && images.size(0) == 1 && ids_with_enc.size(0) != 1)
    images = images.expand({ids_with_enc.size(0), -1, -1});
  const at::Tensor hidden = text_encoder->forward(ids_with_enc, attention_mask,
                                                  TextMode::Multimodal, images, image_mask, trace);
  return itm_head->forward(hidden.select(1, 0));
}

CrossAttentionCache BlipRetrievalImpl::cross_attention_kv(const at::Tensor& image_embeds) {
  return text_encoder->cross_attention_kv(image_embeds);
}

at::Tensor BlipRetrievalImpl::itm_logits(const at::Tensor& ids_with_enc,
                                         const at::Tensor& attention_mask,
                                         const CrossAttentionCache& image_kv,
                                         const at::Tensor& image_mask, BertTrace* trace) {
  // The head reads position 0 only, so the last layer computes only that (unless traced).
  const at::Tensor hidden = text_encoder->forward_with_cross_kv(ids_with_enc, attention_mask, image_kv, image_mask,
                                                                trace, trace ? OutputTokens::All : OutputTokens::First);
  return itm_head->forward(hidden.select(1, 0));
}

at::Tensor BlipRetrievalImpl::with_enc_token(const at::Tensor& input_ids, int64_t enc_token_id) {
  at::Tensor ids = input_ids.clone();
  ids.select(1, 0).fill_(enc_token_id);
  return ids;
}

const std::vector<std::string>& momentum_state_prefixes() {
  static const std::vector<std::string> prefixes = {
      "visual_encoder_m.", "vision_proj_m.", "text_encoder_m.", "text_proj_m.",
      "image_queue",       "text_queue",     "idx_queue",       "ptr_queue"};
  return prefixes;
}

}  // namespace blip::models
