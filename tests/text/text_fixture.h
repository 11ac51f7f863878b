// Loads blip_ref/text.json (60 captions with BLIP's pre_caption output and BERT encodings).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "common/fixtures.h"

namespace blip::test {

inline const nlohmann::json& text_fixture() {
  static const nlohmann::json j = [] {
    std::ifstream in(blip_ref_dir() + "/text.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

inline std::string bert_vocab_path() { return fixtures_root() + "/bert-base-uncased-vocab.txt"; }

// Decodes the fixture's *_utf8_hex fields, which hold the exact bytes.
inline std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// Shows a UTF-8 string with its control and non-ASCII bytes escaped, for failure messages.
inline std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char b : s) {
    if (b >= 0x20 && b < 0x7F) {
      out.push_back(static_cast<char>(b));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", b);
      out += buf;
    }
  }
  return out;
}

}  // namespace blip::test
