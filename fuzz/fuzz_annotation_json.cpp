// Fuzzes the retrieval annotation parsers (BLIP's coco/flickr eval and train JSON files) on raw
// JSON text: parse_retrieval_split and parse_train_dataset, both through detail::
// parse_annotation_list and pre_caption. Anything but a result or a blip::Error is a bug, and a
// result must be self-consistent (the ground-truth maps index what the split holds).
#include "blip/data/retrieval_dataset.h"
#include "blip/data/train_dataset.h"
#include "blip/error.h"
#include "fuzz_common.h"

#include <cstdint>
#include <cstdio>
#include <string>

namespace {

using blip::fuzz::check;

void check_split(const blip::data::RetrievalSplit& s) {
  check(!s.text.empty() && !s.image.empty(), "a parsed split has images and captions");
  check(s.txt2img.size() == s.text.size(), "txt2img has one entry per text");
  check(s.img2txt.size() == s.image.size(), "img2txt has one entry per image");
  std::size_t texts = 0;
  for (std::size_t i = 0; i < s.img2txt.size(); ++i)
    for (std::int64_t t : s.img2txt[i]) {
      check(t == static_cast<std::int64_t>(texts++), "texts are numbered image by image");
      check(s.txt2img[static_cast<std::size_t>(t)] == static_cast<std::int64_t>(i), "txt2img inverts img2txt");
    }
  check(texts == s.text.size(), "img2txt covers every text");
  check(s.image_paths().size() == s.image.size(), "one path per image");

  // Dropping the first image keeps the numbering consistent.
  std::vector<std::int64_t> kept_texts, kept_images;
  const auto rest = blip::data::without_images(s, {0}, &kept_texts, &kept_images);
  check(rest.num_images() == s.num_images() - 1, "without_images drops one image");
  check(rest.num_texts() == s.num_texts() - static_cast<std::int64_t>(s.img2txt[0].size()),
        "without_images drops its captions");
  check(kept_texts.size() == rest.text.size() && kept_images.size() == rest.image.size(),
        "kept indices match what remains");
  for (std::size_t t = 0; t < rest.text.size(); ++t)
    check(rest.text[t] == s.text[static_cast<std::size_t>(kept_texts[t])], "kept_texts selects the texts");
}

void check_train(const blip::data::TrainDataset& d) {
  check(d.image.size() == d.caption.size() && d.idx.size() == d.image.size(), "one caption and id per sample");
  check(d.num_ids >= 1 && d.num_ids <= d.size(), "between 1 and size() distinct ids");
  std::int64_t next = 0;
  for (std::int64_t id : d.idx) {
    check(id >= 0 && id < d.num_ids, "ids lie in [0, num_ids)");
    check(id <= next, "ids are numbered in order of first appearance");
    if (id == next) ++next;
  }
  check(next == d.num_ids, "every id is used");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // BLIP's max_words, and a negative one (Python slice semantics) chosen by the input's length.
  const int max_words = size % 4 == 3 ? -static_cast<int>(size % 7) : blip::data::kRetrievalMaxWords;
  try {
    check_split(blip::data::parse_retrieval_split(text, "fuzz.json", "/images", max_words));
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
  }
  try {
    check_train(blip::data::parse_train_dataset(text, "fuzz_train.json", "images", max_words));
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
  }
  return 0;
}
