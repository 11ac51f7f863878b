#include "blip/data/train_dataset.h"

#include "blip/error.h"
#include "blip/text/pre_caption.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <unordered_set>

namespace fs = std::filesystem;

namespace blip::data {
namespace {

// Where BLIP's dataset classes download the annotation files from.
constexpr const char* kBlipAnnotationBaseUrl =
    "https://storage.googleapis.com/sfr-vision-language-research/datasets/";

std::string json_type(const nlohmann::json& j) { return j.type_name(); }

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

std::string read_annotation_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open the annotation file for reading");
  std::string text;
  char buf[1 << 16];
  // Bounded even if the file grew after the size check.
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxTrainAnnotationBytes)
      fail(path, "annotation file is larger than " + std::to_string(kMaxTrainAnnotationBytes) +
                     " bytes");
  }
  if (in.bad()) fail(path, "read error");
  return text;
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
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(what, "invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  }
  if (!root.is_array())
    fail(what, "expected a JSON list of {\"image\", \"caption\", \"image_id\"} entries, got a JSON " +
                   json_type(root));
  if (root.empty()) fail(what, "the training set is empty (no entries)");

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
  const std::string file_name = train_annotation_file_name(spec.dataset);
  const std::string path = (fs::path(spec.ann_root) / file_name).string();

  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) {
    const std::string url = train_annotation_download_url(spec.dataset);
    if (url.empty())
      fail(path, "annotation file not found (dataset 'custom' reads " + file_name +
                     " from ann_root: a JSON list of {\"image\": <path relative to image_root>, "
                     "\"caption\": <string>, \"image_id\": <string or integer>})");
    fail(path, "annotation file not found; BLIP downloads it from " + url +
                   " (save it in ann_root '" + spec.ann_root + "')");
  }
  if (fs::is_directory(status)) fail(path, "is a directory, expected the annotation JSON file");
  // A device or FIFO (e.g. a link to /dev/zero) would never end or block.
  if (!fs::is_regular_file(status)) fail(path, "is not a regular file");
  const auto size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot read the file size: " + ec.message());
  if (size > kMaxTrainAnnotationBytes)
    fail(path, "annotation file has " + std::to_string(size) + " bytes, more than the limit of " +
                   std::to_string(kMaxTrainAnnotationBytes));

  return parse_train_dataset(read_annotation_file(path), path, spec.image_root, spec.max_words);
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
