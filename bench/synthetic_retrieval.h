// Synthetic retrieval data for benchmarks: a BERT-shaped vocabulary of made-up words, COCO-like
// captions (8-20 words, ~14 tokens on average with [CLS]/[SEP]) and random images, so that the
// benchmark needs neither the fixtures nor a download.
#pragma once

#include <ATen/ATen.h>

#include <random>
#include <string>
#include <vector>

#include "blip/data/image_loader.h"
#include "blip/data/retrieval_dataset.h"

namespace blip::bench {

// 30522 entries like bert-base-uncased: [PAD], [unused*], [UNK], [CLS], [SEP], [MASK], words.
inline std::vector<std::string> synthetic_vocab() {
  std::vector<std::string> vocab;
  vocab.push_back("[PAD]");
  for (int i = 1; i < 100; ++i) vocab.push_back("[unused" + std::to_string(i) + "]");
  for (const char* s : {"[UNK]", "[CLS]", "[SEP]", "[MASK]"}) vocab.push_back(s);
  for (int i = 0; static_cast<int>(vocab.size()) < 30522; ++i) vocab.push_back("w" + std::to_string(i));
  return vocab;
}

// `images` images with `captions_per_image` captions each, laid out as BLIP's datasets are.
inline data::RetrievalSplit synthetic_split(int64_t images, int64_t captions_per_image, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> words(8, 20), word(0, 29000);
  data::RetrievalSplit split;
  split.name = "synthetic";
  for (int64_t i = 0; i < images; ++i) {
    split.image.push_back("synthetic/" + std::to_string(i) + ".jpg");
    split.img2txt.emplace_back();
    for (int64_t c = 0; c < captions_per_image; ++c) {
      std::string caption;
      for (int w = words(rng); w > 0; --w) caption += (caption.empty() ? "w" : " w") + std::to_string(word(rng));
      split.img2txt.back().push_back(split.num_texts());
      split.txt2img.push_back(i);
      split.text.push_back(caption);
    }
  }
  return split;
}

// An image loader returning random normalized-range pixels (decoding is not what is measured).
inline data::ImageLoadFn random_image_loader(int64_t image_size) {
  return [image_size](const std::string& path) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(std::hash<std::string>{}(path));
    return at::randn({3, image_size, image_size}, gen);
  };
}

}  // namespace blip::bench
