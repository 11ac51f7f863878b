// Fuzzes the retrieval config loader (load_retrieval_config: BLIP's retrieval_*.yaml plus
// key=value overrides, and the med_config.json it names) on raw bytes. The input is split at NUL
// bytes into up to three parts:
//   <config YAML> [\0 <override lines, key=value, parsed by parse_overrides> [\0 <med_config JSON>]]
// written as config.yaml (and med_config.json; without a third part a valid one is written) into a
// private folder in /dev/shm (or $TMPDIR), so relative paths in the YAML resolve there.
// Anything but a config or a blip::Error is a bug. A config that loads must load again from
// retrieval_config_entries() written back as YAML by blip::train::config_yaml (blip_train's
// config.yaml writer), to the same entries.
#include "blip/config.h"
#include "blip/error.h"
#include "blip/train/train_checkpoint.h"
#include "core/utf8.h"
#include "fuzz_common.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using blip::fuzz::check;

namespace fs = std::filesystem;

// A valid BLIP-style med_config.json (a small text encoder), used when the input has no third part.
constexpr const char* kDefaultMedConfig = R"({
 "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
 "hidden_dropout_prob": 0.1, "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 64,
 "layer_norm_eps": 1e-12, "max_position_embeddings": 64, "model_type": "bert", "num_attention_heads": 4,
 "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": 30524,
 "encoder_width": 768, "add_cross_attention": true
})";

void remove_work_dir();

// A private folder, removed at exit.
const fs::path& work_dir() {
  static const fs::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = (fs::is_directory("/dev/shm") ? std::string("/dev/shm") : std::string(tmp ? tmp : "/tmp")) +
                        "/blip_fuzz_config.XXXXXX";
    if (!mkdtemp(templ.data())) std::abort();
    return fs::path(templ);
  }();
  // Registered after `dir` is built, so it runs before `dir` is destroyed.
  static const bool cleanup_registered = std::atexit(remove_work_dir) == 0;
  (void)cleanup_registered;
  return dir;
}

void remove_work_dir() {
  std::error_code ec;
  fs::remove_all(work_dir(), ec);
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz_config: cannot write %s\n", path.c_str());
    std::abort();
  }
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

bool same_value(const blip::ConfigEntry& a, const blip::ConfigEntry& b) {
  if (a.key != b.key || a.value.index() != b.value.index()) return false;
  if (const double* x = std::get_if<double>(&a.value)) {
    const double y = std::get<double>(b.value);
    return (std::isnan(*x) && std::isnan(y)) || std::memcmp(x, &y, sizeof y) == 0;
  }
  return a.value == b.value;
}

// YAML is Unicode: a string that is not UTF-8 (paths may be any bytes) cannot be written back as is.
bool all_utf8(const std::vector<blip::ConfigEntry>& entries) {
  for (const auto& e : entries)
    if (const auto* text = std::get_if<std::string>(&e.value))
      for (std::size_t i = 0; i < text->size();) {
        const auto seq = blip::utf8::next(*text, i);
        if (!seq.valid()) return false;
        i += seq.length;
      }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul1 = input.find('\0');
  const std::size_t nul2 = nul1 == std::string::npos ? nul1 : input.find('\0', nul1 + 1);
  const std::string yaml = input.substr(0, nul1);
  const std::string override_text =
      nul1 == std::string::npos ? std::string() : input.substr(nul1 + 1, nul2 == std::string::npos ? nul2 : nul2 - nul1 - 1);
  const std::string med = nul2 == std::string::npos ? std::string(kDefaultMedConfig) : input.substr(nul2 + 1);

  const fs::path yaml_path = work_dir() / "config.yaml";
  write_file(yaml_path, yaml);
  write_file(work_dir() / "med_config.json", med);

  std::map<std::string, std::string> overrides;
  try {
    overrides = blip::parse_overrides(split_lines(override_text), "--set");
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
    return 0;
  }
  blip::RetrievalConfig config;
  try {
    config = blip::load_retrieval_config(yaml_path.string(), overrides);
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
    return 0;
  }
  // What loaded passes validate() and sets the text encoder's encoder_width from the ViT.
  blip::validate(config);
  check(config.med.encoder_width == config.vit_config().width, "encoder_width is the ViT width");

  // Written back as blip_train writes config.yaml (PyYAML's style choices), the entries load
  // again to the same values (paths are absolute by now).
  const auto entries = blip::retrieval_config_entries(config);
  if (!all_utf8(entries)) return 0;
  const std::string again = blip::train::config_yaml(config);
  const fs::path again_path = work_dir() / "again.yaml";
  write_file(again_path, again);
  blip::RetrievalConfig back;
  try {
    back = blip::load_retrieval_config(again_path.string());
  } catch (const blip::Error& e) {
    std::fprintf(stderr, "config written back does not load: %s\n--- YAML ---\n%s\n", e.what(), again.c_str());
    std::abort();
  }
  const auto entries2 = blip::retrieval_config_entries(back);
  check(entries2.size() == entries.size(), "same number of entries after a round trip");
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (!same_value(entries[i], entries2[i])) {
      std::fprintf(stderr, "key '%s' changed in a round trip\n--- YAML ---\n%s\n", entries[i].key.c_str(), again.c_str());
      std::abort();
    }
  return 0;
}
