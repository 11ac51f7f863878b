// BLIP_Retrieval.forward (models/blip_retrieval.py): the ITA loss against the momentum features
// and queues, the queue update, and the ITM loss with hard negatives.
//
// Across processes (TrainCollectives), as BLIP under DDP: the queues receive every rank's momentum
// features and idx (concat_all_gather); with negative_all_rank the hard negatives are drawn from
// every rank's batch (weights against the gathered features, image tokens gathered with gradient
// as BLIP's GatherLayer does). The ITA loss itself stays local, as in BLIP. The models layer does
// not know about process groups: the caller (train/) supplies the collectives.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "blip/models/blip_retrieval.h"

namespace blip::models {

// The hard negatives of a batch: for each text the index of its negative image, for each image
// the index of its negative text ([B] int64, indices into the batch).
struct ItmNegatives {
  at::Tensor image_for_text;
  at::Tensor text_for_image;
};

// The collectives forward needs; world size 1 (or no collectives at all) means copies.
class TrainCollectives {
 public:
  virtual ~TrainCollectives() = default;
  virtual int world_size() const = 0;
  // concat_all_gather: every rank's tensor along dim 0, rank order, no gradient.
  virtual at::Tensor all_gather(const at::Tensor& tensor) const = 0;
  // GatherLayer: the same with gradient (backward sums over ranks, returns this rank's slice).
  virtual at::Tensor all_gather_with_grad(const at::Tensor& tensor) const = 0;
};

struct TrainForwardOptions {
  double alpha = 0.4;            // momentum distillation weight (warmed up by the loop)
  std::int64_t enc_token_id = 0;  // [ENC]
  bool negative_all_rank = false;
  const TrainCollectives* collectives = nullptr;  // null: one process
  const ItmNegatives* replay = nullptr;           // null: draw with at::multinomial
};

struct TrainForward {
  at::Tensor loss_ita;  // 0-d
  at::Tensor loss_itm;  // 0-d
  // What forward computed on the way, for inspection and tests.
  at::Tensor image_embeds, image_embeds_m;     // [B, N, D]
  at::Tensor image_feat, image_feat_m;         // [B, E]
  at::Tensor text_hidden, text_hidden_m;       // [B, L, H] (mode text)
  at::Tensor text_feat, text_feat_m;           // [B, E]
  at::Tensor sim_targets;                      // [B, B + Q]: idx matches, normalised per row
  at::Tensor sim_i2t, sim_t2i, sim_i2t_m, sim_t2i_m;  // [B, B + Q], divided by temp
  at::Tensor sim_i2t_targets, sim_t2i_targets;         // alpha-mixed soft targets
  at::Tensor weights_i2t, weights_t2i;         // [B, B] negative-sampling weights (same idx -> 0)
  ItmNegatives negatives;  // the chosen negatives (indices into the gathered batch with negative_all_rank)
  at::Tensor itm_pos_hidden;                   // [B, L, H]
  at::Tensor itm_neg_hidden;                   // [2B, L, H]
  at::Tensor vl_output;                        // [3B, 2] ITM logits
  at::Tensor itm_labels;                       // [3B]: B ones, 2B zeros
};

// BLIP's hard-negative draw: one at::multinomial(weights[b], 1) per row of `weights`
// (softmax(logits) with the `same`-idx entries zeroed). A row that underflowed to all zeros (a
// small temp) is drawn from softmax(logits[b]) over the entries not in `same[b]`, the same
// distribution computed without the positive. Throws blip::Error for non-finite weights or a
// row with no candidate.
at::Tensor draw_hard_negatives(const at::Tensor& weights, const at::Tensor& logits,
                               const at::Tensor& same);

// One BLIP_Retrieval.forward(image, caption, alpha, idx) step on tokenised captions
// (input_ids [B, L] with [CLS] in column 0, attention_mask [B, L]); idx [B] int64.
// Side effects as in BLIP: temp is clamped to [0.001, 0.5], the momentum encoders are updated,
// and the momentum features are enqueued. Negatives are drawn with at::multinomial from the
// default CPU generator, exactly as BLIP does, unless `replay` gives them.
// Throws blip::Error when the model has no momentum encoders, when queue_size is not a multiple
// of B, or when every sample of the batch shares one idx (no negative can be drawn).
// Across ranks every rank passes the same batch size and text length (BLIP pads to max_length).
TrainForward train_forward(BlipRetrievalImpl& model, const at::Tensor& images,
                           const at::Tensor& input_ids, const at::Tensor& attention_mask,
                           const at::Tensor& idx, const TrainForwardOptions& options);
// One process, BLIP's defaults otherwise.
TrainForward train_forward(BlipRetrievalImpl& model, const at::Tensor& images,
                           const at::Tensor& input_ids, const at::Tensor& attention_mask,
                           const at::Tensor& idx, double alpha, int64_t enc_token_id,
                           const ItmNegatives* replay = nullptr);

}  // namespace blip::models
