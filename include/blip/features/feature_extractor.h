// Feature extraction with BLIP's retrieval model (what blip_extract writes): image and text
// embeddings, their normalized projections, and ITM logits for every (image, caption) pair.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blip/blip_defaults.h"
#include "blip/image/decode.h"
#include "blip/io/named_tensors.h"

namespace blip::text {
class Tokenizer;
}
namespace blip::models {
class BlipRetrievalImpl;
}

namespace blip::features {

// A caption and where it came from ("--caption 2", "captions.txt:14"), for error messages.
struct Caption {
  std::string text;
  std::string source;
};

// Images per ViT forward (extraction keeps every image's tokens, so batches stay small).
inline constexpr int64_t kExtractImageBatch = 16;

struct ExtractOptions {
  int max_words = kCaptionMaxWords;    // pre_caption(caption, 30), as BLIP's retrieval datasets
  int max_length = kTextMaxLength;     // tokenizer(..., max_length=35), as BLIP's evaluation()
  int64_t image_batch = kExtractImageBatch;
  int64_t text_batch = kEvalTextChunk;  // texts per text-encoder / ITM forward (evaluation(): 256)
  image::DecodeOptions decode;
  // Where the model is expected: "" = wherever it is; otherwise "cpu" or "cuda[:n]", which must
  // be the model's device (extract_features never moves the caller's model: move it first).
  std::string device;
};

// Runs the model (no grad; in eval mode for the call, the caller's training flags restored on
// return; weights, dtype and device untouched) on the model's device and returns, in this order:
//   pixel_values   [I,3,S,S] f32   transform_test of each image
//   image_embeds   [I,N,D]   f32   ViT output
//   image_feat     [I,E]     f32   normalized vision_proj of the CLS token
//   input_ids      [T,L]     i64   tokenizer(pre_caption(c, max_words), max_length L)
//   attention_mask [T,L]     i64
//   text_embeds    [T,L,H]   f32   text encoder, mode text
//   text_feat      [T,E]     f32   normalized text_proj of the CLS token
//   itm_logits     [I,T,2]   f32   ITM head on ([ENC] + caption) x image, all-ones image mask
// (itm_logits only when there are both images and captions.) Bad images or captions throw
// blip::Error naming the file or the caption's source; so does a `device` that is not the
// model's. The features and ITM logits are those of blip/retrieval (itc_features.h,
// itm_scorer.h), the scoring path of evaluation and search.
io::NamedTensors extract_features(models::BlipRetrievalImpl& model, const text::Tokenizer& tokenizer,
                                  const std::vector<std::string>& image_paths,
                                  const std::vector<Caption>& captions,
                                  const ExtractOptions& options = {});

// Caption sources for tools: one caption per line (a final newline ends the last line; "\r\n"
// is accepted), or a JSON array of strings. Errors name the file and the line / index.
std::vector<Caption> read_captions_file(const std::string& path);
std::vector<Caption> read_captions_json(const std::string& path);

}  // namespace blip::features
