// BLIP_Retrieval.forward: contrastive (ITA) and matching (ITM) losses of one training step.
#include "blip/models/train_forward.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <limits>
#include <string>

#include "blip/error.h"

namespace blip::models {

namespace {

constexpr double kTempMin = 0.001;  // BLIP clamps temp to [0.001, 0.5] at every step
constexpr double kTempMax = 0.5;

at::Tensor normalize_rows(const at::Tensor& x) {
  constexpr double kEps = 1e-12;  // F.normalize
  return x / x.norm(2, {-1}, /*keepdim=*/true).clamp_min(kEps).expand_as(x);
}

// -sum(log_softmax(sim, 1) * targets, 1).mean()
at::Tensor soft_cross_entropy(const at::Tensor& sim, const at::Tensor& targets) {
  return -at::sum(at::log_softmax(sim, 1) * targets, 1).mean();
}

void check_inputs(const BlipRetrievalImpl& model, const at::Tensor& images, const at::Tensor& ids,
                  const at::Tensor& mask, const at::Tensor& idx) {
  const std::string what = "BLIP retrieval training";
  if (!model.has_momentum()) fail(what, "the model was built without momentum encoders");
  const int64_t batch = images.size(0);
  if (ids.dim() != 2 || ids.size(0) != batch || !mask.defined() || mask.sizes() != ids.sizes())
    fail(what, "input_ids and attention_mask must be [B, L] with B = " + std::to_string(batch));
  if (idx.numel() != batch) fail(what, "idx must hold one id per image");
}

// concat_all_gather / GatherLayer, or the tensor itself in one process.
at::Tensor gather(const TrainCollectives* c, const at::Tensor& t) {
  return c && c->world_size() > 1 ? c->all_gather(t) : t;
}
at::Tensor gather_with_grad(const TrainCollectives* c, const at::Tensor& t) {
  return c && c->world_size() > 1 ? c->all_gather_with_grad(t) : t;
}

}  // namespace

// One draw per row of `weights`, as BLIP's loop of torch.multinomial(weights[b], 1) calls.
// A row can underflow to all zeros when temp is small (every candidate's exp(sim / temp) is 0
// next to the masked positive's): BLIP's multinomial then fails. Such a row is redrawn from
// the softmax over the candidates alone (`logits` with `same` masked), which is the same
// distribution — the masked entries carry no weight — computed without the positive.
at::Tensor draw_hard_negatives(const at::Tensor& weights, const at::Tensor& logits, const at::Tensor& same) {
  // BLIP issue #76: NaN/Inf features (a diverged step) reach multinomial, which aborts there.
  if (!at::isfinite(weights).all().item<bool>())
    fail("BLIP retrieval training",
         "the hard-negative sampling weights are not finite (the model's features became NaN or "
         "Inf: the loss diverged; lower init_lr or train in fp32)");
  const at::Tensor row_sums = weights.sum(1).cpu();
  std::vector<int64_t> picks;
  for (int64_t b = 0; b < weights.size(0); ++b) {
    at::Tensor row = weights[b];
    if (row_sums[b].item<double>() <= 0)
      row = at::softmax(logits[b].masked_fill(same[b], -std::numeric_limits<double>::infinity()), 0);
    try {
      picks.push_back(at::multinomial(row, 1).item<int64_t>());
    } catch (const c10::Error& e) {
      fail("BLIP retrieval training",
           "cannot draw a hard negative for sample " + std::to_string(b) +
               " (every sample of the batch has the same idx?): " + e.what_without_backtrace());
    }
  }
  return at::tensor(picks, at::kLong);
}

TrainForward train_forward(BlipRetrievalImpl& model, const at::Tensor& images,
                           const at::Tensor& input_ids, const at::Tensor& attention_mask,
                           const at::Tensor& idx, double alpha, int64_t enc_token_id,
                           const ItmNegatives* replay) {
  TrainForwardOptions options;
  options.alpha = alpha;
  options.enc_token_id = enc_token_id;
  options.replay = replay;
  return train_forward(model, images, input_ids, attention_mask, idx, options);
}

TrainForward train_forward(BlipRetrievalImpl& model, const at::Tensor& images,
                           const at::Tensor& input_ids, const at::Tensor& attention_mask,
                           const at::Tensor& idx_in, const TrainForwardOptions& options) {
  check_inputs(model, images, input_ids, attention_mask, idx_in);
  const TrainCollectives* coll = options.collectives;
  const double alpha = options.alpha;
  TrainForward r;
  {
    torch::NoGradGuard no_grad;
    model.temp.clamp_(kTempMin, kTempMax);
  }
  const at::Tensor& temp = model.temp;
  const int64_t batch = images.size(0);

  r.image_embeds = model.visual_encoder->forward(images);
  const at::Tensor image_atts = at::ones({r.image_embeds.size(0), r.image_embeds.size(1)},
                                         at::TensorOptions().dtype(at::kLong).device(images.device()));
  r.image_feat = normalize_rows(model.vision_proj->forward(r.image_embeds.select(1, 0)));
  r.text_hidden = model.text_encoder->forward(input_ids, attention_mask, TextMode::Text);
  r.text_feat = normalize_rows(model.text_proj->forward(r.text_hidden.select(1, 0)));

  // ===== image-text contrastive =====
  const at::Tensor idx = idx_in.reshape({-1, 1}).to(at::kLong);
  const at::Tensor idx_all = at::cat({idx.t(), model.idx_queue.clone().detach()}, 1);
  const at::Tensor pos_idx = at::eq(idx, idx_all).to(at::kFloat);
  r.sim_targets = pos_idx / pos_idx.sum(1, /*keepdim=*/true);

  at::Tensor image_feat_m_all, text_feat_m_all;
  {
    torch::NoGradGuard no_grad;
    model.momentum_update();  // inside forward, before the momentum features (as BLIP)
    r.image_embeds_m = model.visual_encoder_m->forward(images);
    r.image_feat_m = normalize_rows(model.vision_proj_m->forward(r.image_embeds_m.select(1, 0)));
    image_feat_m_all = at::cat({r.image_feat_m.t(), model.image_queue.clone().detach()}, 1);
    r.text_hidden_m = model.text_encoder_m->forward(input_ids, attention_mask, TextMode::Text);
    r.text_feat_m = normalize_rows(model.text_proj_m->forward(r.text_hidden_m.select(1, 0)));
    text_feat_m_all = at::cat({r.text_feat_m.t(), model.text_queue.clone().detach()}, 1);

    r.sim_i2t_m = at::matmul(r.image_feat_m, text_feat_m_all) / temp;
    r.sim_t2i_m = at::matmul(r.text_feat_m, image_feat_m_all) / temp;
    r.sim_i2t_targets = alpha * at::softmax(r.sim_i2t_m, 1) + (1 - alpha) * r.sim_targets;
    r.sim_t2i_targets = alpha * at::softmax(r.sim_t2i_m, 1) + (1 - alpha) * r.sim_targets;
  }
  r.sim_i2t = at::matmul(r.image_feat, text_feat_m_all) / temp;
  r.sim_t2i = at::matmul(r.text_feat, image_feat_m_all) / temp;
  r.loss_ita = (soft_cross_entropy(r.sim_i2t, r.sim_i2t_targets) +
                soft_cross_entropy(r.sim_t2i, r.sim_t2i_targets)) /
               2;
  // The queues take every rank's momentum features (the global batch).
  const at::Tensor idxs = gather(coll, idx);
  {
    torch::NoGradGuard no_grad;
    model.dequeue_and_enqueue(gather(coll, r.image_feat_m), gather(coll, r.text_feat_m), idxs);
  }

  // ===== image-text matching =====
  const at::Tensor enc_ids = BlipRetrievalImpl::with_enc_token(input_ids, options.enc_token_id);
  r.itm_pos_hidden = model.text_encoder->forward(enc_ids, attention_mask, TextMode::Multimodal,
                                                 r.image_embeds, image_atts);
  // Candidates for the negatives: this rank's batch, or every rank's (negative_all_rank).
  const bool all_rank = options.negative_all_rank;
  at::Tensor logits_i2t, logits_t2i;
  {
    torch::NoGradGuard no_grad;
    const at::Tensor same = at::eq(idx, (all_rank ? idxs : idx).t());
    const at::Tensor image_feat_world = all_rank ? gather(coll, r.image_feat) : r.image_feat;
    const at::Tensor text_feat_world = all_rank ? gather(coll, r.text_feat) : r.text_feat;
    logits_i2t = at::matmul(r.image_feat, text_feat_world.t()) / temp;
    logits_t2i = at::matmul(r.text_feat, image_feat_world.t()) / temp;
    r.weights_i2t = at::softmax(logits_i2t, 1).masked_fill_(same, 0);
    r.weights_t2i = at::softmax(logits_t2i, 1).masked_fill_(same, 0);
    if (!options.replay) {
      r.negatives.image_for_text = draw_hard_negatives(r.weights_t2i, logits_t2i, same);  // first B draws
      r.negatives.text_for_image = draw_hard_negatives(r.weights_i2t, logits_i2t, same);  // next B draws
    }
  }
  if (options.replay) r.negatives = *options.replay;
  const at::Tensor image_embeds_world =
      all_rank ? gather_with_grad(coll, r.image_embeds) : r.image_embeds;
  const at::Tensor enc_ids_world = all_rank ? gather(coll, enc_ids) : enc_ids;
  const at::Tensor mask_world = all_rank ? gather(coll, attention_mask) : attention_mask;
  const at::Tensor neg_img = r.negatives.image_for_text.to(images.device());
  const at::Tensor neg_txt = r.negatives.text_for_image.to(images.device());
  const at::Tensor image_embeds_neg = image_embeds_world.index_select(0, neg_img);
  const at::Tensor text_ids_all = at::cat({enc_ids, enc_ids_world.index_select(0, neg_txt)}, 0);
  const at::Tensor text_atts_all =
      at::cat({attention_mask, mask_world.index_select(0, neg_txt)}, 0);
  const at::Tensor image_embeds_all = at::cat({image_embeds_neg, r.image_embeds}, 0);
  const at::Tensor image_atts_all = at::cat({image_atts, image_atts}, 0);
  r.itm_neg_hidden = model.text_encoder->forward(text_ids_all, text_atts_all, TextMode::Multimodal,
                                                 image_embeds_all, image_atts_all);

  const at::Tensor vl_embeddings =
      at::cat({r.itm_pos_hidden.select(1, 0), r.itm_neg_hidden.select(1, 0)}, 0);
  r.vl_output = model.itm_head->forward(vl_embeddings);
  r.itm_labels = at::cat({at::ones({batch}, at::kLong), at::zeros({2 * batch}, at::kLong)})
                     .to(images.device());
  r.loss_itm = at::cross_entropy_loss(r.vl_output, r.itm_labels);
  return r;
}

}  // namespace blip::models
