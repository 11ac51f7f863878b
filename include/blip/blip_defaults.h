// BLIP's retrieval defaults, in one place: the values of salesforce/BLIP's
// configs/retrieval_coco.yaml, its retrieval datasets (data/coco_karpathy_dataset.py) and
// train_retrieval.py evaluation(). Every default elsewhere in libblip refers to these names.
#pragma once

#include <cstdint>

namespace blip {

// tokenizer(text, padding='max_length', truncation=True, max_length=35): captions in training,
// evaluation and feature extraction.
inline constexpr int kTextMaxLength = 35;

// pre_caption(caption, max_words=30): the retrieval datasets' word limit (the function's own
// Python default is 50: text::kPreCaptionDefaultMaxWords).
inline constexpr int kCaptionMaxWords = 30;

// evaluation()'s text_bs: texts per text-encoder forward for the ITC features.
inline constexpr std::int64_t kEvalTextChunk = 256;

// retrieval_coco.yaml: candidates rescored by the ITM head, images per test batch, image size.
inline constexpr std::int64_t kTestK = 256;
inline constexpr std::int64_t kBatchSizeTest = 64;
inline constexpr std::int64_t kImageSize = 384;

}  // namespace blip
