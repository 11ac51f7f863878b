// Matrix-product FLOPs of one BLIP retrieval training step (models/blip_retrieval.py forward +
// backward), from the model dimensions, so that bench_train_step can report achieved GFLOP/s.
//
// Forward:  online ViT and momentum ViT (B images each), online and momentum text encoders
//           (B texts each, mode 'text'), ITM passes of 3B (text, image) pairs (B positive + 2B
//           negative, each with its own cross-attention K/V of a full image), the projections and
//           the similarity matrices against the queues.
// Backward: ~2x the forward FLOPs of the parts that track gradients (online ViT, online text,
//           ITM, online projections and similarities); the momentum encoders run without grad.
//           (The patch embedding needs no input gradient, so "2x" slightly overcounts it.)
// Recompute: with gradient checkpointing, attn and mlp of the last ckpt_layer ViT blocks run
//           again in backward (for every block, norms are not counted, so that is the block).
#pragma once

#include "blip/config.h"
#include "flop_model.h"

namespace blip::bench {

inline double vit_patch_flops(const VitConfig& v) {
  return linear_flops(static_cast<double>(v.num_patches()), 3.0 * v.patch_size * v.patch_size,
                      static_cast<double>(v.width));
}

// One image through one ViT block (attention + MLP).
inline double vit_block_flops(const VitConfig& v) {
  return (vit_flops(v) - vit_patch_flops(v)) / static_cast<double>(v.depth);
}

struct TrainStepFlops {
  double forward = 0;    // everything the forward pass computes
  double backward = 0;   // 2x the grad-tracked part of forward
  double recompute = 0;  // checkpointed blocks run again in backward
  double total() const { return forward + backward + recompute; }
};

// batch B, texts padded to text_len tokens (BLIP trains with max_length 35 padding).
inline TrainStepFlops train_step_flops(const VitConfig& vit, const BertConfig& bert, int64_t batch,
                                       int64_t text_len, int64_t embed_dim, int64_t queue_size) {
  const double b = static_cast<double>(batch), len = static_cast<double>(text_len);
  const double image_tokens = static_cast<double>(vit.num_patches() + 1);
  const double e = static_cast<double>(embed_dim), cols = b + static_cast<double>(queue_size);

  const double one_vit = vit_flops(vit);
  const double one_text = text_flops(bert, len);
  const double one_pair = itm_pair_flops(bert, len, image_tokens) + cross_kv_flops(bert, image_tokens);
  // vision_proj / text_proj on the [CLS] rows (online or momentum: same cost).
  const double projections = b * (linear_flops(1, static_cast<double>(vit.width), e) +
                                  linear_flops(1, static_cast<double>(bert.hidden_size), e));
  const double sims = 2 * linear_flops(b, e, cols);        // sim_i2t, sim_t2i (online or momentum)
  const double negative_weights = 2 * linear_flops(b, e, b);  // weights_i2t / t2i (no grad)

  const double tracked = b * one_vit + b * one_text + 3 * b * one_pair + projections + sims;
  const double untracked = b * one_vit + b * one_text + projections + sims + negative_weights;

  TrainStepFlops f;
  f.forward = tracked + untracked;
  f.backward = 2 * tracked;
  if (vit.grad_ckpt) f.recompute = b * static_cast<double>(vit.ckpt_layer) * vit_block_flops(vit);
  return f;
}

}  // namespace blip::bench
