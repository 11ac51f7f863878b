// Feature extraction with BLIP's retrieval model (what blip_extract writes): image and text
// embeddings, their normalized projections, and ITM logits for every (image, caption) pair.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

struct ExtractOptions {
  int max_words = 30;          // pre_caption(caption, 30), as BLIP's retrieval datasets
  int max_length = 35;         // tokenizer(..., max_length=35), as BLIP's evaluation()
  int64_t image_batch = 16;    // images per ViT forward
  int64_t text_batch = 256;    // texts per text-encoder forward (evaluation() uses 256)
  image::DecodeOptions decode;
  std::string device = "cpu";  // "cpu" or "cuda[:n]"
};

// Runs the model (eval mode, no grad) and returns, in this order:
//   pixel_values   [I,3,S,S] f32   transform_test of each image
//   image_embeds   [I,N,D]   f32   ViT output
//   image_feat     [I,E]     f32   normalized vision_proj of the CLS token
//   input_ids      [T,L]     i64   tokenizer(pre_caption(c, max_words), max_length L)
//   attention_mask [T,L]     i64
//   text_embeds    [T,L,H]   f32   text encoder, mode text
//   text_feat      [T,E]     f32   normalized text_proj of the CLS token
//   itm_logits     [I,T,2]   f32   ITM head on ([ENC] + caption) x image, all-ones image mask
// (itm_logits only when there are both images and captions.) Bad images or captions throw
// blip::Error naming the file or the caption's source.
io::NamedTensors extract_features(models::BlipRetrievalImpl& model, const text::Tokenizer& tokenizer,
                                  const std::vector<std::string>& image_paths,
                                  const std::vector<Caption>& captions,
                                  const ExtractOptions& options = {});

// Caption sources for tools: one caption per line (a final newline ends the last line; "\r\n"
// is accepted), or a JSON array of strings. Errors name the file and the line / index.
std::vector<Caption> read_captions_file(const std::string& path);
std::vector<Caption> read_captions_json(const std::string& path);

}  // namespace blip::features
