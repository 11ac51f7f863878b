#include "blip/retrieval/text_tensors.h"

#include <ATen/ATen.h>

namespace blip::retrieval {

TextTensors tokenize_to_tensors(const text::Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                int max_length) {
  text::Encoding enc = tokenizer.encode_batch(texts, max_length, text::Padding::MaxLength, true);
  TextTensors t;
  t.input_ids = at::from_blob(enc.input_ids.data(), {enc.rows, enc.cols}, at::kLong).clone();
  t.attention_mask = at::from_blob(enc.attention_mask.data(), {enc.rows, enc.cols}, at::kLong).clone();
  return t;
}

}  // namespace blip::retrieval
