// BLIP's retrieval training sets (data/coco_karpathy_dataset.py coco_karpathy_train,
// data/flickr30k_dataset.py flickr30k_train): an annotation file holding
//   [{"image": "<path relative to image_root>", "caption": "<one string>", "image_id": <str|int>}, ...]
// becomes one sample per entry: (image path, pre_caption(caption, max_words), img_ids[image_id]),
// where img_ids numbers the distinct image_id values 0, 1, 2, ... in order of first appearance
// (the ids the ITC/ITM losses use to tell positives of the same image apart). As in Python, the
// string "5" and the integer 5 are different ids.
//
// Annotation files, in `ann_root`:
//   dataset "coco"   -> coco_karpathy_train.json
//   dataset "flickr" -> flickr30k_train.json
//   dataset "custom" -> retrieval_train.json (same format; this project's)
// This library never downloads: a missing file is a blip::Error naming it and BLIP's URL.
#pragma once

#include "blip/data/retrieval_dataset.h"  // kRetrievalMaxWords

#include <cstdint>
#include <string>
#include <vector>

namespace blip::data {

inline constexpr std::uint64_t kMaxTrainAnnotationBytes = kMaxAnnotationBytes;

struct TrainDatasetSpec {
  std::string dataset = "coco";  // coco | flickr | custom
  std::string ann_root;          // folder of the annotation file
  std::string image_root;        // images are image_root / entry["image"] (os.path.join)
  int max_words = kRetrievalMaxWords;
};

struct TrainDataset {
  std::string annotation_file;  // the file it was read from (the `what` when parsed from memory)
  std::string image_root;

  std::vector<std::string> image;    // annotation "image" entries, one per sample
  std::vector<std::string> caption;  // pre_caption'ed captions, one per sample
  std::vector<std::int64_t> idx;     // img_ids[image_id] of each sample, in [0, num_ids)
  std::int64_t num_ids = 0;          // distinct image_id values

  std::int64_t size() const { return static_cast<std::int64_t>(image.size()); }
  // os.path.join(image_root, image[i]): an absolute entry replaces the root.
  std::string image_path(std::int64_t i) const;
};

// "coco_karpathy_train.json", "flickr30k_train.json", "retrieval_train.json".
// Throws blip::Error for an unknown dataset.
std::string train_annotation_file_name(const std::string& dataset);
// The URL BLIP downloads the file from; "" for dataset "custom".
std::string train_annotation_download_url(const std::string& dataset);

// Reads and builds the training set. Errors (blip::Error, naming the file): missing file (with
// the download URL), a directory or other non-regular file, a file over
// kMaxTrainAnnotationBytes, invalid JSON (with the byte offset; includes invalid UTF-8), wrong
// shape (with the entry index and key), and an empty list.
TrainDataset load_train_dataset(const TrainDatasetSpec& spec);

// Builds the training set from annotation JSON text; `what` names it in error messages.
TrainDataset parse_train_dataset(const std::string& json_text, const std::string& what,
                                 const std::string& image_root,
                                 int max_words = kRetrievalMaxWords);

// Checks that every distinct image path exists and is a regular file (or a link to one), so a
// training run fails before its first step rather than hours in. Throws blip::Error naming the
// first bad path (in sample order), the sample it belongs to, and how many images are bad.
void check_image_files(const TrainDataset& dataset);

}  // namespace blip::data
