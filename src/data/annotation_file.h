// What BLIP's retrieval annotation files share, train and eval splits alike: where BLIP downloads
// them from, reading one with every failure named (missing file with its URL or the custom
// format, a directory, a device or FIFO, a size cap), and parsing the top-level JSON list.
#pragma once

#include <nlohmann/json.hpp>

#include "blip/data/retrieval_dataset.h"

#include <cstdint>
#include <string>

namespace blip::data::detail {

// Where BLIP's dataset classes download the annotation files from.
inline constexpr const char* kBlipAnnotationBaseUrl =
    "https://storage.googleapis.com/sfr-vision-language-research/datasets/";

inline std::string json_type(const nlohmann::json& j) { return j.type_name(); }

// The bytes of `ann_root/file_name`. A missing file says where to get it: BLIP's `url`, or for
// dataset custom (`url` empty) the expected `custom_format`.
std::string read_annotation_file(const std::string& ann_root, const std::string& file_name,
                                 const std::string& url, const std::string& custom_format,
                                 std::string* path_out);

// The top-level list of an annotation file; `entry_format` names what its entries should be and
// `empty_reason` what an empty list means, both for the error messages.
nlohmann::json parse_annotation_list(const std::string& text, const std::string& what,
                                     const std::string& entry_format, const std::string& empty_reason);

}  // namespace blip::data::detail
