#include "blip/data/train_dataset.h"

#include "blip/error.h"
#include "data/annotation_file.h"
#include "blip/text/pre_caption.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <unordered_set>

namespace fs = std::filesystem;

namespace blip::data {
namespace {

using detail::json_type;
using detail::kBlipAnnotationBaseUrl;

// The img_ids dictionary key of an image_id: Python keeps the string "5" and the int 5 apart,
// so the kind is part of the key.
std::string image_id_key(const nlohmann::json& id, const std::string& what,
                         const std::string& entry) {
  if (id.is_string()) return "s" + id.get<std::string>();
  if (id.is_number_integer()) return "i" + id.dump();  // canonical decimal
  fail(what, entry + ": \"image_id\" must be a string or an integer, got a JSON " +
                 (id.is_number_float() ? std::string("float ") + id.dump() : json_type(id)));
}

const nlohmann::json& require_key(const nlohmann::json& ann, const char* key,
                                  const std::string& what, const std::string& entry) {
  const auto it = ann.find(key);
  if (it == ann.end()) fail(what, entry + ": missing key \"" + key + "\"");
  return *it;
}

}  // namespace

std::string TrainDataset::image_path(std::int64_t i) const {
  return (fs::path(image_root) / image.at(static_cast<std::size_t>(i))).string();
}

std::string train_annotation_file_name(const std::string& dataset) {
  if (dataset == "coco") return "coco_karpathy_train.json";
  if (dataset == "flickr") return "flickr30k_train.json";
  if (dataset == "custom") return "retrieval_train.json";
  fail("dataset '" + dataset + "'", "unknown retrieval dataset (expected coco, flickr or custom)");
}

std::string train_annotation_download_url(const std::string& dataset) {
  const std::string name = train_annotation_file_name(dataset);
  return dataset == "custom" ? "" : kBlipAnnotationBaseUrl + name;
}

TrainDataset parse_train_dataset(const std::string& json_text, const std::string& what,
                                 const std::string& image_root, int max_words) {
  const nlohmann::json root = detail::parse_annotation_list(
      json_text, what, "{\"image\", \"caption\", \"image_id\"}", "the training set is empty (no entries)");

  TrainDataset d;
  d.annotation_file = what;
  d.image_root = image_root;
  d.image.reserve(root.size());
  d.caption.reserve(root.size());
  d.idx.reserve(root.size());
  std::unordered_map<std::string, std::int64_t> img_ids;
  for (std::size_t i = 0; i < root.size(); ++i) {
    const nlohmann::json& ann = root[i];
    const std::string entry = "entry " + std::to_string(i);
    if (!ann.is_object()) fail(what, entry + ": expected an object, got a JSON " + json_type(ann));

    const nlohmann::json& image = require_key(ann, "image", what, entry);
    if (!image.is_string())
      fail(what, entry + ": \"image\" must be a string, got a JSON " + json_type(image));
    if (image.get_ref<const std::string&>().empty())
      fail(what, entry + ": \"image\" is an empty path");

    // Training entries hold ONE caption (the eval files hold a list per image).
    const nlohmann::json& caption = require_key(ann, "caption", what, entry);
    if (!caption.is_string())
      fail(what, entry + ": \"caption\" must be a string, got a JSON " + json_type(caption));

    const std::string key = image_id_key(require_key(ann, "image_id", what, entry), what, entry);
    const auto [it, inserted] = img_ids.emplace(key, static_cast<std::int64_t>(img_ids.size()));

    d.image.push_back(image.get<std::string>());
    d.caption.push_back(text::pre_caption(caption.get_ref<const std::string&>(), max_words,
                                          what + " " + entry + " \"caption\""));
    d.idx.push_back(it->second);
  }
  d.num_ids = static_cast<std::int64_t>(img_ids.size());
  return d;
}

TrainDataset load_train_dataset(const TrainDatasetSpec& spec) {
  std::string path;
  const std::string text = detail::read_annotation_file(
      spec.ann_root, train_annotation_file_name(spec.dataset), train_annotation_download_url(spec.dataset),
      "{\"image\": <path relative to image_root>, \"caption\": <string>, \"image_id\": <string or integer>}",
      &path);
  return parse_train_dataset(text, path, spec.image_root, spec.max_words);
}

void check_image_files(const TrainDataset& dataset) {
  std::unordered_set<std::string> seen;
  std::int64_t bad = 0, first_bad = -1;
  std::string first_reason;
  for (std::int64_t i = 0; i < dataset.size(); ++i) {
    if (!seen.insert(dataset.image[static_cast<std::size_t>(i)]).second) continue;
    std::error_code ec;
    const auto status = fs::status(dataset.image_path(i), ec);
    std::string reason;
    if (!fs::exists(status))
      reason = "image file not found";
    else if (!fs::is_regular_file(status))
      reason = "is not a regular file";
    if (reason.empty()) continue;
    if (bad++ == 0) {
      first_bad = i;
      first_reason = reason;
    }
  }
  if (bad == 0) return;
  const std::string source =
      dataset.annotation_file.empty() ? std::string() : " of " + dataset.annotation_file;
  fail(dataset.image_path(first_bad),
       first_reason + " (sample " + std::to_string(first_bad) + source + "; " +
           std::to_string(bad) + " of " + std::to_string(seen.size()) +
           " distinct images are missing or not regular files)");
}

}  // namespace blip::data
