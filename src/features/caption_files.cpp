// Reading captions for tools: plain text (one per line) and JSON arrays.
#include <nlohmann/json.hpp>

#include "blip/error.h"
#include "blip/features/feature_extractor.h"
#include "core/regular_file.h"

namespace blip::features {
namespace {

// Far above any real caption list (a million 60-byte captions), far below what a wrong path
// such as /dev/zero or a disk image would make us allocate.
constexpr std::uint64_t kMaxCaptionsFileBytes = 64 * files::kMiB;

std::string read_file(const std::string& path) {
  return files::read_regular_file(path, kMaxCaptionsFileBytes, "captions file");
}

}  // namespace

std::vector<Caption> read_captions_file(const std::string& path) {
  const std::string data = read_file(path);
  std::vector<Caption> out;
  size_t start = 0;
  int line = 1;
  while (start < data.size()) {
    size_t end = data.find('\n', start);
    if (end == std::string::npos) end = data.size();
    std::string text = data.substr(start, end - start);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    out.push_back({std::move(text), path + ":" + std::to_string(line)});
    start = end + 1;
    ++line;
  }
  if (out.empty()) fail(path, "captions file is empty");
  return out;
}

std::vector<Caption> read_captions_json(const std::string& path) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("not valid JSON: ") + e.what());
  }
  if (!doc.is_array()) fail(path, "expected a JSON array of caption strings");
  if (doc.empty()) fail(path, "the caption array is empty");
  std::vector<Caption> out;
  for (size_t i = 0; i < doc.size(); ++i) {
    if (!doc[i].is_string()) fail(path, "element " + std::to_string(i) + " is not a string");
    out.push_back({doc[i].get<std::string>(), path + "[" + std::to_string(i) + "]"});
  }
  return out;
}

}  // namespace blip::features
