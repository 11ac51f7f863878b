// Captions as the model takes them: BLIP's tokenizer(texts, padding='max_length', truncation=True,
// max_length=35, return_tensors="pt"). One path for training, evaluation and feature extraction.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "blip/text/tokenizer.h"

namespace blip::retrieval {

struct TextTensors {
  at::Tensor input_ids;       // [N, max_length] int64, CPU: [CLS] pieces [SEP] [PAD]...
  at::Tensor attention_mask;  // [N, max_length] int64, CPU
};

// Throws blip::Error (from the tokenizer) for invalid UTF-8 or max_length < 2.
TextTensors tokenize_to_tensors(const text::Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                int max_length = text::kBlipMaxLength);

}  // namespace blip::retrieval
