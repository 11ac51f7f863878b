#include "blip/retrieval/text_tensors.h"

#include <ATen/ATen.h>

#include "blip/error.h"

namespace blip::retrieval {

TextTensors tokenize_to_tensors(const text::Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                int max_length) {
  text::Encoding enc = tokenizer.encode_batch(texts, max_length, text::Padding::MaxLength, true);
  TextTensors t;
  t.input_ids = at::from_blob(enc.input_ids.data(), {enc.rows, enc.cols}, at::kLong).clone();
  t.attention_mask = at::from_blob(enc.attention_mask.data(), {enc.rows, enc.cols}, at::kLong).clone();
  return t;
}

void check_vocabulary_fits(const text::Tokenizer& tokenizer, std::int64_t model_vocab_size,
                           const std::string& what) {
  if (tokenizer.vocab_size() > model_vocab_size)
    fail(what, "the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                   " tokens but the text encoder's vocab_size (med_config) is " +
                   std::to_string(model_vocab_size) + ": its ids would fall outside the word embeddings");
}

}  // namespace blip::retrieval
