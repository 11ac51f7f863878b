// Multiply-add counts (2 FLOP each) of BLIP's retrieval stages, from the model dimensions, so a
// benchmark can report achieved GFLOP/s. Only matrix products are counted (softmax, LayerNorm and
// GELU are a few percent at these sizes).
#pragma once

#include <cstdint>

#include "blip/config.h"

namespace blip::bench {

inline double linear_flops(double rows, double in, double out) { return 2.0 * rows * in * out; }

// One image through the ViT.
inline double vit_flops(const VitConfig& v) {
  const double n = static_cast<double>(v.num_patches() + 1), d = static_cast<double>(v.width);
  const double patch = linear_flops(static_cast<double>(v.num_patches()), 3.0 * v.patch_size * v.patch_size, d);
  const double block = linear_flops(n, d, 3 * d) + linear_flops(n, d, d) + 2 * 2.0 * n * n * d +
                       linear_flops(n, d, static_cast<double>(v.mlp_hidden())) +
                       linear_flops(n, static_cast<double>(v.mlp_hidden()), d);
  return patch + static_cast<double>(v.depth) * block;
}

// Self-attention + FFN of one BERT layer for a text of `len` tokens.
inline double bert_layer_text_flops(const BertConfig& b, double len) {
  const double h = static_cast<double>(b.hidden_size), i = static_cast<double>(b.intermediate_size);
  return linear_flops(len, h, 4 * h) + 2 * 2.0 * len * len * h + linear_flops(len, h, i) + linear_flops(len, i, h);
}

// One text in mode 'text'.
inline double text_flops(const BertConfig& b, double len) {
  return static_cast<double>(b.num_hidden_layers) * bert_layer_text_flops(b, len);
}

// Cross-attention keys and values of one image (all layers): the part the reference protocol
// recomputes for every text and the optimized one computes once per image.
inline double cross_kv_flops(const BertConfig& b, double image_tokens) {
  return static_cast<double>(b.num_hidden_layers) *
         linear_flops(image_tokens, static_cast<double>(b.encoder_width), 2.0 * static_cast<double>(b.hidden_size));
}

// One (text, image) ITM pass without the cross K/V projections.
inline double itm_pair_flops(const BertConfig& b, double len, double image_tokens) {
  const double h = static_cast<double>(b.hidden_size);
  const double cross = linear_flops(len, h, 2 * h) + 2 * 2.0 * len * image_tokens * h;
  return static_cast<double>(b.num_hidden_layers) * (bert_layer_text_flops(b, len) + cross) +
         linear_flops(1, h, 2);
}

}  // namespace blip::bench
