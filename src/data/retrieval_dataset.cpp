#include "blip/data/retrieval_dataset.h"

#include "blip/error.h"
#include "data/annotation_file.h"
#include "blip/text/pre_caption.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace blip::data {
namespace {

using detail::json_type;
using detail::kBlipAnnotationBaseUrl;

void check_split_name(const std::string& split) {
  if (split != "val" && split != "test")
    fail("split '" + split + "'", "unknown retrieval split (expected val or test)");
}

}  // namespace

std::string RetrievalSplit::image_path(std::int64_t i) const {
  return (fs::path(image_root) / image.at(static_cast<std::size_t>(i))).string();
}

std::vector<std::string> RetrievalSplit::image_paths() const {
  std::vector<std::string> paths;
  paths.reserve(image.size());
  for (std::int64_t i = 0; i < num_images(); ++i) paths.push_back(image_path(i));
  return paths;
}

std::string annotation_file_name(const std::string& dataset, const std::string& split) {
  check_split_name(split);
  if (dataset == "coco") return "coco_karpathy_" + split + ".json";
  if (dataset == "flickr") return "flickr30k_" + split + ".json";
  if (dataset == "custom") return "retrieval_" + split + ".json";
  fail("dataset '" + dataset + "'", "unknown retrieval dataset (expected coco, flickr or custom)");
}

std::string annotation_download_url(const std::string& dataset, const std::string& split) {
  if (dataset == "custom") {
    check_split_name(split);
    return "";
  }
  return kBlipAnnotationBaseUrl + annotation_file_name(dataset, split);
}

RetrievalSplit parse_retrieval_split(const std::string& json_text, const std::string& what,
                                     const std::string& image_root, int max_words) {
  const nlohmann::json root = detail::parse_annotation_list(
      json_text, what, "{\"image\", \"caption\"}", "the split is empty (no images)");

  RetrievalSplit s;
  s.image_root = image_root;
  std::int64_t txt_id = 0;
  for (std::size_t img_id = 0; img_id < root.size(); ++img_id) {
    const nlohmann::json& ann = root[img_id];
    const std::string entry = "entry " + std::to_string(img_id);
    if (!ann.is_object()) fail(what, entry + ": expected an object, got a JSON " + json_type(ann));
    const auto image = ann.find("image");
    if (image == ann.end()) fail(what, entry + ": missing key \"image\"");
    if (!image->is_string())
      fail(what, entry + ": \"image\" must be a string, got a JSON " + json_type(*image));
    if (image->get_ref<const std::string&>().empty())
      fail(what, entry + ": \"image\" is an empty path");
    const auto captions = ann.find("caption");
    if (captions == ann.end()) fail(what, entry + ": missing key \"caption\"");
    // BLIP iterates the value; a plain string would silently become one text per character.
    if (!captions->is_array())
      fail(what, entry + ": \"caption\" must be a list of strings, got a JSON " +
                     json_type(*captions));

    s.image.push_back(image->get<std::string>());
    s.img2txt.emplace_back();
    for (std::size_t c = 0; c < captions->size(); ++c) {
      const nlohmann::json& caption = (*captions)[c];
      if (!caption.is_string())
        fail(what, entry + ": caption " + std::to_string(c) + " must be a string, got a JSON " +
                       json_type(caption));
      s.text.push_back(text::pre_caption(caption.get_ref<const std::string&>(), max_words,
                                         what + " " + entry + " caption " + std::to_string(c)));
      s.img2txt.back().push_back(txt_id);
      s.txt2img.push_back(static_cast<std::int64_t>(img_id));
      ++txt_id;
    }
  }
  if (s.text.empty()) fail(what, "the split has no captions");
  return s;
}

RetrievalSplit load_retrieval_split(const RetrievalSplitSpec& spec) {
  std::string path;
  const std::string text = detail::read_annotation_file(
      spec.ann_root, annotation_file_name(spec.dataset, spec.split),
      annotation_download_url(spec.dataset, spec.split),
      "{\"image\": <path relative to image_root>, \"caption\": [<strings>]}", &path);
  RetrievalSplit s = parse_retrieval_split(text, path, spec.image_root, spec.max_words);
  s.name = spec.split;
  s.annotation_file = path;
  return s;
}

RetrievalSplit without_images(const RetrievalSplit& split, const std::vector<std::int64_t>& dropped,
                              std::vector<std::int64_t>* kept_texts,
                              std::vector<std::int64_t>* kept_images) {
  std::vector<bool> drop(split.image.size(), false);
  for (std::int64_t i : dropped) {
    if (i < 0 || i >= split.num_images())
      fail(split.annotation_file.empty() ? "split " + split.name : split.annotation_file,
           "cannot drop image " + std::to_string(i) + ": outside [0, " +
               std::to_string(split.num_images()) + ")");
    drop[static_cast<std::size_t>(i)] = true;
  }
  RetrievalSplit out;
  out.name = split.name;
  out.annotation_file = split.annotation_file;
  out.image_root = split.image_root;
  if (kept_texts) kept_texts->clear();
  if (kept_images) kept_images->clear();
  for (std::int64_t i = 0; i < split.num_images(); ++i) {
    if (drop[static_cast<std::size_t>(i)]) continue;
    const std::int64_t new_img = out.num_images();
    out.image.push_back(split.image[i]);
    out.img2txt.emplace_back();
    if (kept_images) kept_images->push_back(i);
    for (std::int64_t t : split.img2txt[i]) {
      out.img2txt.back().push_back(out.num_texts());
      out.txt2img.push_back(new_img);
      out.text.push_back(split.text[t]);
      if (kept_texts) kept_texts->push_back(t);
    }
  }
  return out;
}

}  // namespace blip::data
