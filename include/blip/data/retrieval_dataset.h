// BLIP's retrieval evaluation splits (data/coco_karpathy_dataset.py coco_karpathy_retrieval_eval,
// data/flickr30k_dataset.py flickr30k_retrieval_eval): an annotation file holding
//   [{"image": "<path relative to image_root>", "caption": ["...", ...]}, ...]
// becomes the flat text list (pre_caption(caption, max_words) of every caption, image by image),
// the image list, and the ground-truth maps txt2img / img2txt, numbered exactly as BLIP numbers
// them (texts in file order; an image's texts are consecutive).
//
// Annotation files, in `ann_root`:
//   dataset "coco"   -> coco_karpathy_val.json / coco_karpathy_test.json
//   dataset "flickr" -> flickr30k_val.json / flickr30k_test.json
//   dataset "custom" -> retrieval_val.json / retrieval_test.json (same format; this project's)
// BLIP downloads the coco/flickr files on first use; this library never downloads: a missing file
// is a blip::Error that names it and gives the URL to fetch it from.
#pragma once

#include "blip/blip_defaults.h"
#include <cstdint>
#include <string>
#include <vector>

namespace blip::data {

// The largest annotation file read (COCO's train file is about 70 MB): a bigger one, or a device
// such as /dev/zero, is refused rather than exhausting memory.
inline constexpr std::uint64_t kMaxAnnotationBytes = std::uint64_t{1} << 30;

// BLIP's retrieval configs use max_words = 30 (the dataset constructors' default).
inline constexpr int kRetrievalMaxWords = kCaptionMaxWords;

struct RetrievalSplitSpec {
  std::string dataset = "coco";  // coco | flickr | custom
  std::string split = "test";    // val | test
  std::string ann_root;          // folder of the annotation file
  std::string image_root;        // images are image_root / entry["image"] (os.path.join)
  int max_words = kRetrievalMaxWords;
};

struct RetrievalSplit {
  std::string name;             // "val" / "test"
  std::string annotation_file;  // the file it was read from ("" when parsed from memory)
  std::string image_root;

  std::vector<std::string> text;   // pre_caption'ed captions, BLIP's dataset.text
  std::vector<std::string> image;  // annotation "image" entries, BLIP's dataset.image
  std::vector<std::int64_t> txt2img;
  std::vector<std::vector<std::int64_t>> img2txt;

  std::int64_t num_images() const { return static_cast<std::int64_t>(image.size()); }
  std::int64_t num_texts() const { return static_cast<std::int64_t>(text.size()); }
  // os.path.join(image_root, image[i]): an absolute entry replaces the root.
  std::string image_path(std::int64_t i) const;
  std::vector<std::string> image_paths() const;
};

// "coco_karpathy_test.json", "flickr30k_val.json", "retrieval_test.json", ...
// Throws blip::Error for an unknown dataset or split.
std::string annotation_file_name(const std::string& dataset, const std::string& split);
// The URL BLIP downloads the file from; "" for dataset "custom".
std::string annotation_download_url(const std::string& dataset, const std::string& split);

// Reads and builds a split. Errors (blip::Error, naming the file): missing file (with the
// download URL), unreadable file, invalid JSON (with the byte offset), wrong shape (with the
// entry index and key), an invalid UTF-8 caption, and a split without images or without captions.
RetrievalSplit load_retrieval_split(const RetrievalSplitSpec& spec);

// Builds a split from annotation JSON text; `what` names it in error messages.
RetrievalSplit parse_retrieval_split(const std::string& json_text, const std::string& what,
                                     const std::string& image_root,
                                     int max_words = kRetrievalMaxWords);

// The split with the listed images removed (used for --skip-bad-images): their captions go too,
// and the remaining texts and images are renumbered in order, so the result is exactly what BLIP
// would build from the annotation file without those entries. kept_texts / kept_images (optional)
// receive the original indices of what remains, to select rows of already computed features.
RetrievalSplit without_images(const RetrievalSplit& split, const std::vector<std::int64_t>& dropped,
                              std::vector<std::int64_t>* kept_texts = nullptr,
                              std::vector<std::int64_t>* kept_images = nullptr);

}  // namespace blip::data
