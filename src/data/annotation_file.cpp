#include "data/annotation_file.h"

#include <filesystem>

#include "blip/error.h"
#include "core/regular_file.h"

namespace blip::data::detail {

namespace fs = std::filesystem;

std::string read_annotation_file(const std::string& ann_root, const std::string& file_name,
                                 const std::string& url, const std::string& custom_format,
                                 std::string* path_out) {
  const std::string path = (fs::path(ann_root) / file_name).string();
  if (path_out) *path_out = path;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) {
    if (url.empty())
      fail(path, "annotation file not found (dataset 'custom' reads " + file_name +
                     " from ann_root: a JSON list of " + custom_format + ")");
    fail(path, "annotation file not found; BLIP downloads it from " + url + " (save it in ann_root '" +
                   ann_root + "')");
  }
  return files::read_regular_file(path, kMaxAnnotationBytes, "annotation file");
}

nlohmann::json parse_annotation_list(const std::string& text, const std::string& what,
                                     const std::string& entry_format, const std::string& empty_reason) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(what, "invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range 406: a number like 1e400
    fail(what, std::string("invalid JSON: ") + e.what());
  }
  if (!root.is_array())
    fail(what, "expected a JSON list of " + entry_format + " entries, got a JSON " + json_type(root));
  if (root.empty()) fail(what, empty_reason);
  return root;
}

}  // namespace blip::data::detail
