// Captions as the model takes them: BLIP's tokenizer(texts, padding='max_length', truncation=True,
// max_length=35, return_tensors="pt"). One path for training, evaluation and feature extraction.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
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

// The tokenizer's ids must index the text encoder's word embeddings (med_config's vocab_size).
// Checked once per call of the entry points (evaluation, extraction, training) rather than in
// every forward, where it would cost a device sync on a GPU. Throws blip::Error naming `what`.
void check_vocabulary_fits(const text::Tokenizer& tokenizer, std::int64_t model_vocab_size,
                           const std::string& what);

}  // namespace blip::retrieval
