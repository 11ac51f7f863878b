// Reading BLIP's configs/med_config.json (a Hugging Face BertConfig in JSON).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <sstream>
#include <utility>

#include "blip/config.h"
#include "blip/error.h"
#include "core/regular_file.h"

namespace blip {

namespace {

using nlohmann::json;

// BLIP's med_config.json is 500 bytes; the cap only stops a wrong path from being read whole.
constexpr std::uint64_t kMaxMedConfigBytes = files::kMiB;
constexpr int64_t kMaxVocabSize = int64_t{1} << 22;
constexpr int64_t kMaxWidth = 16384;
constexpr int64_t kMaxLayers = 256;
constexpr int64_t kMaxHeads = 256;
constexpr int64_t kMaxPositions = 65536;

// Keys Hugging Face writes into config files that do not change BLIP's text encoder.
const std::set<std::string>& ignored_hf_keys() {
  static const std::set<std::string> keys = {
      "architectures",  "model_type",      "transformers_version", "torch_dtype",
      "gradient_checkpointing", "use_cache", "classifier_dropout", "output_attentions",
      "output_hidden_states", "return_dict", "_name_or_path", "id2label", "label2id",
      "num_labels", "finetuning_task", "problem_type", "tokenizer_class", "prefix",
      "bos_token_id", "eos_token_id", "sep_token_id", "decoder_start_token_id",
      "task_specific_params", "tie_word_embeddings", "is_encoder_decoder"};
  return keys;
}

class MedReader {
 public:
  MedReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  void get_int(const char* key, int64_t& out) {
    if (!take(key)) return;
    const json& v = j_.at(key);
    if (!v.is_number_integer()) bad_type(key, "an integer", v);
    out = v.get<int64_t>();
  }
  void get_double(const char* key, double& out) {
    if (!take(key)) return;
    const json& v = j_.at(key);
    if (!v.is_number()) bad_type(key, "a number", v);
    out = v.get<double>();
  }
  void get_bool(const char* key, bool& out) {
    if (!take(key)) return;
    const json& v = j_.at(key);
    if (!v.is_boolean()) bad_type(key, "true or false", v);
    out = v.get<bool>();
  }
  void get_string(const char* key, std::string& out) {
    if (!take(key)) return;
    const json& v = j_.at(key);
    if (!v.is_string()) bad_type(key, "a string", v);
    out = v.get<std::string>();
  }
  void check_no_unknown_keys() const {
    std::vector<std::string> unknown;
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!seen_.count(it.key()) && !ignored_hf_keys().count(it.key())) unknown.push_back(it.key());
    if (unknown.empty()) return;
    std::ostringstream msg;
    msg << "unknown key" << (unknown.size() > 1 ? "s" : "") << " in med config:";
    for (const auto& k : unknown) msg << " '" << k << "'";
    fail(path_, msg.str());
  }

 private:
  bool take(const char* key) {
    seen_.insert(key);
    return j_.contains(key);
  }
  [[noreturn]] void bad_type(const char* key, const char* expected, const json& v) const {
    fail(path_, std::string("key '") + key + "' must be " + expected + ", got " + v.dump());
  }

  const json& j_;
  std::string path_;
  std::set<std::string> seen_;
};

void require(bool ok, const std::string& path, const std::string& reason) {
  if (!ok) fail(path, reason);
}

}  // namespace

BertConfig load_med_config(const std::string& json_path) {
  std::error_code ec;
  if (!std::filesystem::exists(json_path, ec)) fail(json_path, "cannot open med config: file not found");
  const std::string text = files::read_regular_file(json_path, kMaxMedConfigBytes, "med config file");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(json_path, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(json_path, "med config must be a JSON object");

  BertConfig c;
  MedReader r(j, json_path);
  r.get_int("vocab_size", c.vocab_size);
  r.get_int("hidden_size", c.hidden_size);
  r.get_int("num_hidden_layers", c.num_hidden_layers);
  r.get_int("num_attention_heads", c.num_attention_heads);
  r.get_int("intermediate_size", c.intermediate_size);
  r.get_int("max_position_embeddings", c.max_position_embeddings);
  r.get_double("layer_norm_eps", c.layer_norm_eps);
  r.get_double("hidden_dropout_prob", c.hidden_dropout_prob);
  r.get_double("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  r.get_int("pad_token_id", c.pad_token_id);
  r.get_int("encoder_width", c.encoder_width);
  r.get_bool("add_cross_attention", c.add_cross_attention);
  r.get_string("hidden_act", c.hidden_act);
  r.get_int("type_vocab_size", c.type_vocab_size);
  r.get_double("initializer_range", c.initializer_range);
  std::string position_embedding_type = "absolute";
  r.get_string("position_embedding_type", position_embedding_type);
  bool is_decoder = false;
  r.get_bool("is_decoder", is_decoder);
  int64_t chunk_size_feed_forward = 0;
  r.get_int("chunk_size_feed_forward", chunk_size_feed_forward);
  r.check_no_unknown_keys();

  require(c.hidden_act == "gelu", json_path,
          "hidden_act '" + c.hidden_act + "' is not supported (BLIP uses exact \"gelu\")");
  require(position_embedding_type == "absolute", json_path,
          "position_embedding_type '" + position_embedding_type +
              "' is not supported (BLIP uses \"absolute\")");
  require(!is_decoder, json_path, "is_decoder must be false for the retrieval text encoder");
  // Far above BERT-large and BLIP's text encoder (768 wide, 12 layers, 30524 tokens); a typo
  // is refused here, naming the key, rather than failing in a huge allocation.
  const std::pair<const char*, std::pair<int64_t, int64_t>> sizes[] = {
      {"vocab_size", {c.vocab_size, kMaxVocabSize}},
      {"hidden_size", {c.hidden_size, kMaxWidth}},
      {"num_hidden_layers", {c.num_hidden_layers, kMaxLayers}},
      {"num_attention_heads", {c.num_attention_heads, kMaxHeads}},
      {"intermediate_size", {c.intermediate_size, 4 * kMaxWidth}},
      {"max_position_embeddings", {c.max_position_embeddings, kMaxPositions}},
      {"encoder_width", {c.encoder_width, kMaxWidth}},
  };
  for (const auto& [key, value_max] : sizes)
    require(value_max.first >= 1 && value_max.first <= value_max.second, json_path,
            std::string("key '") + key + "' must lie in [1, " + std::to_string(value_max.second) + "], got " +
                std::to_string(value_max.first));
  require(c.hidden_size % c.num_attention_heads == 0, json_path,
          "hidden_size (" + std::to_string(c.hidden_size) +
              ") is not a multiple of num_attention_heads (" +
              std::to_string(c.num_attention_heads) + ")");
  require(c.pad_token_id >= 0 && c.pad_token_id < c.vocab_size, json_path,
          "pad_token_id must lie in [0, vocab_size)");
  require(c.layer_norm_eps > 0, json_path, "layer_norm_eps must be positive");
  require(c.hidden_dropout_prob >= 0 && c.hidden_dropout_prob < 1 &&
              c.attention_probs_dropout_prob >= 0 && c.attention_probs_dropout_prob < 1,
          json_path, "dropout probabilities must lie in [0, 1)");
  return c;
}

}  // namespace blip
