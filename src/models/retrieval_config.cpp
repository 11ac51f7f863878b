// Reading BLIP's retrieval YAML (configs/retrieval_coco.yaml layout) into a RetrievalConfig.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "blip/config.h"
#include "blip/error.h"
#include "core/regular_file.h"

namespace blip {

namespace {

namespace fs = std::filesystem;

enum class Kind { String, Path, Int, Double, Bool };

struct KeySpec {
  Kind kind;
  std::function<void(RetrievalConfig&, const YAML::Node&)> set;
  std::function<ConfigEntry(const RetrievalConfig&)> get;
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::String: return "a string";
    case Kind::Path: return "a path";
    case Kind::Int: return "an integer";
    case Kind::Double: return "a number";
    case Kind::Bool: return "true or false";
  }
  return "?";
}

template <typename T>
T scalar_as(const YAML::Node& n) {
  if (!n.IsScalar()) throw YAML::BadConversion(n.Mark());
  return n.as<T>();
}

std::string string_of(const YAML::Node& n) {
  if (n.IsNull()) return "";
  return scalar_as<std::string>(n);
}

#define BLIP_KEY(kind, field, conv)                                                      \
  {#field,                                                                                \
   {kind, [](RetrievalConfig& c, const YAML::Node& n) { c.field = conv(n); },            \
    [](const RetrievalConfig& c) {                                                        \
      return ConfigEntry{#field, decltype(ConfigEntry::value)(                            \
                                     std::in_place_type<decltype(RetrievalConfig::field)>, \
                                     c.field)};                                           \
    }}}

// In the order of BLIP's retrieval_coco.yaml, then the keys this project adds.
const std::vector<std::pair<std::string, KeySpec>>& key_list() {
  static const std::vector<std::pair<std::string, KeySpec>> list = {
      BLIP_KEY(Kind::Path, image_root, string_of),
      BLIP_KEY(Kind::Path, ann_root, string_of),
      BLIP_KEY(Kind::String, dataset, string_of),
      BLIP_KEY(Kind::Path, pretrained, string_of),
      BLIP_KEY(Kind::String, vit, string_of),
      BLIP_KEY(Kind::Int, batch_size_train, scalar_as<int64_t>),
      BLIP_KEY(Kind::Int, batch_size_test, scalar_as<int64_t>),
      BLIP_KEY(Kind::Bool, vit_grad_ckpt, scalar_as<bool>),
      BLIP_KEY(Kind::Int, vit_ckpt_layer, scalar_as<int64_t>),
      BLIP_KEY(Kind::Double, init_lr, scalar_as<double>),
      BLIP_KEY(Kind::Int, image_size, scalar_as<int64_t>),
      BLIP_KEY(Kind::Int, queue_size, scalar_as<int64_t>),
      BLIP_KEY(Kind::Double, alpha, scalar_as<double>),
      BLIP_KEY(Kind::Int, k_test, scalar_as<int64_t>),
      BLIP_KEY(Kind::Bool, negative_all_rank, scalar_as<bool>),
      BLIP_KEY(Kind::Double, weight_decay, scalar_as<double>),
      BLIP_KEY(Kind::Double, min_lr, scalar_as<double>),
      BLIP_KEY(Kind::Int, max_epoch, scalar_as<int64_t>),
      BLIP_KEY(Kind::Path, med_config, string_of),
      BLIP_KEY(Kind::Path, tokenizer, string_of),
      BLIP_KEY(Kind::Int, embed_dim, scalar_as<int64_t>),
      BLIP_KEY(Kind::Double, momentum, scalar_as<double>),
      BLIP_KEY(Kind::Double, train_min_scale, scalar_as<double>),
      BLIP_KEY(Kind::Bool, train_randaugment, scalar_as<bool>),
      BLIP_KEY(Kind::Int, vit_width, scalar_as<int64_t>),
      BLIP_KEY(Kind::Int, vit_depth, scalar_as<int64_t>),
      BLIP_KEY(Kind::Int, vit_heads, scalar_as<int64_t>),
      BLIP_KEY(Kind::Int, vit_patch_size, scalar_as<int64_t>),
  };
  return list;
}
#undef BLIP_KEY

const std::map<std::string, KeySpec>& key_specs() {
  static const std::map<std::string, KeySpec> specs(key_list().begin(), key_list().end());
  return specs;
}

bool is_custom_vit_key(const std::string& key) {
  return key == "vit_width" || key == "vit_depth" || key == "vit_heads" || key == "vit_patch_size";
}

std::string resolve_path(const std::string& p, const fs::path& base) {
  if (p.empty() || is_url(p)) return p;
  fs::path path(p);
  if (path.is_absolute()) return path.lexically_normal().string();
  return (base / path).lexically_normal().string();
}

// Keys as the messages list them, each already quoted ("'vit_width'", "'k_tset' (override)").
std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// The schema's keys, for the unknown-key message ("image_root, ann_root, ...").
std::string allowed_keys() {
  std::string out;
  for (const auto& [key, spec] : key_list()) out += (out.empty() ? "" : ", ") + key;
  return out;
}

// BLIP's retrieval YAMLs are under 1 KiB; the cap only stops a wrong path from being read whole.
constexpr std::uint64_t kMaxConfigBytes = files::kMiB;

YAML::Node load_yaml_root(const std::string& yaml_path) {
  const std::string text = files::read_regular_file(yaml_path, kMaxConfigBytes, "config file");
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail(yaml_path, std::string("invalid YAML: ") + e.what());
  }
  if (root.IsNull()) fail(yaml_path, "config file is empty");
  if (!root.IsMap()) fail(yaml_path, "config must be a mapping of keys to values");
  return root;
}

}  // namespace

RetrievalConfig load_retrieval_config(const std::string& yaml_path,
                                      const std::map<std::string, std::string>& overrides) {
  const YAML::Node root = load_yaml_root(yaml_path);
  const fs::path yaml_dir = fs::absolute(fs::path(yaml_path)).parent_path();
  const fs::path cwd = fs::current_path();
  const auto& specs = key_specs();

  // Collect (key -> value, origin folder for paths), file first, then overrides replace.
  struct Entry {
    YAML::Node value;
    fs::path base;
    bool from_override;
  };
  std::map<std::string, Entry> entries;
  std::vector<std::string> unknown;
  for (const auto& kv : root) {
    std::string key;
    try {
      key = kv.first.as<std::string>();
    } catch (const YAML::Exception&) {
      fail(yaml_path, "config keys must be strings");
    }
    if (!specs.count(key)) {
      unknown.push_back("'" + key + "'");
      continue;
    }
    entries[key] = {kv.second, yaml_dir, false};
  }
  for (const auto& [key, text] : overrides) {
    if (!specs.count(key)) {
      unknown.push_back("'" + key + "' (override)");
      continue;
    }
    entries[key] = {YAML::Node(text), cwd, true};
  }
  if (!unknown.empty())
    fail(yaml_path, "unknown key" + std::string(unknown.size() > 1 ? "s " : " ") +
                        join_keys(unknown) + " (allowed: " + allowed_keys() + ")");

  RetrievalConfig c;
  c.source = yaml_path;
  for (const auto& [key, e] : entries) {
    const KeySpec& spec = specs.at(key);
    try {
      spec.set(c, e.value);
    } catch (const YAML::Exception&) {
      std::string shown;
      if (e.value.IsScalar()) shown = ", got '" + e.value.Scalar() + "'";
      fail(yaml_path, "key '" + key + "'" + (e.from_override ? " (override)" : "") +
                          " must be " + kind_name(spec.kind) + shown);
    }
    if (spec.kind == Kind::Path) {
      std::string* field = key == "image_root"   ? &c.image_root
                           : key == "ann_root"   ? &c.ann_root
                           : key == "pretrained" ? &c.pretrained
                           : key == "med_config" ? &c.med_config
                                                 : &c.tokenizer;
      *field = resolve_path(*field, e.base);
    }
  }
  // ann_root's default is relative too.
  if (!entries.count("ann_root")) c.ann_root = resolve_path(c.ann_root, yaml_dir);
  if (!entries.count("image_root")) c.image_root = resolve_path(".", yaml_dir);

  if (c.vit != "custom") {
    std::vector<std::string> stray;
    for (const char* k : {"vit_width", "vit_depth", "vit_heads", "vit_patch_size"})
      if (entries.count(k)) stray.push_back("'" + std::string(k) + "'");
    if (!stray.empty())
      fail(yaml_path, "key" + std::string(stray.size() > 1 ? "s " : " ") + join_keys(stray) +
                          " only apply to vit: custom (vit is '" + c.vit + "')");
  } else {
    std::vector<std::string> missing;
    for (const char* k : {"vit_width", "vit_depth", "vit_heads"})
      if (!entries.count(k)) missing.push_back("'" + std::string(k) + "'");
    if (!missing.empty())
      fail(yaml_path, "vit: custom needs key" + std::string(missing.size() > 1 ? "s " : " ") +
                          join_keys(missing));
  }
  if (c.med_config.empty())
    fail(yaml_path, "key 'med_config' is missing (path to BLIP's med_config.json)");
  validate(c);
  try {
    c.med = load_med_config(c.med_config);
  } catch (const Error& e) {
    fail(yaml_path, std::string("med_config: ") + e.what());
  }
  c.med.encoder_width = c.vit_config().width;  // BLIP_Retrieval: med_config.encoder_width = vision_width
  return c;
}

std::vector<ConfigEntry> retrieval_config_entries(const RetrievalConfig& config) {
  std::vector<ConfigEntry> out;
  for (const auto& [key, spec] : key_list())
    if (config.vit == "custom" || !is_custom_vit_key(key)) out.push_back(spec.get(config));
  return out;
}

namespace {

// Upper bounds on the model's dimensions: far above BLIP's models (ViT-L is 1024 wide, 24 deep,
// 16 heads, at 384 px), low enough that a typo such as image_size 16000 is refused at once with
// the key's name, not after minutes of allocating a 1e6-token position embedding.
constexpr int64_t kMaxImageSize = 4096;
constexpr int64_t kMaxPatchTokens = 65536;  // (4096 / 16)^2
constexpr int64_t kMaxVitWidth = 16384;
constexpr int64_t kMaxVitDepth = 256;
constexpr int64_t kMaxVitHeads = 256;
constexpr int64_t kMaxEmbedDim = 16384;
constexpr int64_t kMaxBatchSize = int64_t{1} << 20;
constexpr int64_t kMaxQueueSize = int64_t{1} << 24;
constexpr int64_t kMaxKTest = int64_t{1} << 31;

std::string range_text(int64_t lo, int64_t hi) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

}  // namespace

void validate(const RetrievalConfig& c) {
  const std::string& what = c.source.empty() ? std::string("retrieval config") : c.source;
  auto require = [&](bool ok, const std::string& reason) {
    if (!ok) fail(what, reason);
  };
  auto require_range = [&](const char* key, int64_t value, int64_t lo, int64_t hi) {
    require(value >= lo && value <= hi,
            std::string("key '") + key + "' must lie in " + range_text(lo, hi) + ", got " + std::to_string(value));
  };
  require(c.vit == "base" || c.vit == "large" || c.vit == "custom",
          "key 'vit' must be base, large or custom, got '" + c.vit + "'");
  const VitConfig v = c.vit_config();
  if (c.vit == "custom") {  // base and large have fixed, valid dimensions
    require_range("vit_width", v.width, 1, kMaxVitWidth);
    require_range("vit_depth", v.depth, 1, kMaxVitDepth);
    require_range("vit_heads", v.heads, 1, kMaxVitHeads);
    require_range("vit_patch_size", v.patch_size, 1, kMaxImageSize);
  }
  require(v.width % v.heads == 0, "ViT width (" + std::to_string(v.width) +
                                      ") is not a multiple of its heads (" +
                                      std::to_string(v.heads) + ")");
  require(c.image_size >= v.patch_size && c.image_size <= kMaxImageSize && c.image_size % v.patch_size == 0,
          "key 'image_size' must be a multiple of the patch size (" + std::to_string(v.patch_size) +
              ") in " + range_text(v.patch_size, kMaxImageSize) + ", got " + std::to_string(c.image_size));
  require(v.num_patches() <= kMaxPatchTokens,
          "key 'image_size' " + std::to_string(c.image_size) + " with patch size " +
              std::to_string(v.patch_size) + " gives " + std::to_string(v.num_patches()) +
              " patches per image, more than the limit of " + std::to_string(kMaxPatchTokens));
  require_range("vit_ckpt_layer", c.vit_ckpt_layer, 0, v.depth);
  require_range("batch_size_train", c.batch_size_train, 1, kMaxBatchSize);
  require_range("batch_size_test", c.batch_size_test, 1, kMaxBatchSize);
  require_range("queue_size", c.queue_size, 1, kMaxQueueSize);
  require_range("k_test", c.k_test, 1, kMaxKTest);
  require_range("embed_dim", c.embed_dim, 1, kMaxEmbedDim);
  require(c.max_epoch >= 0, "key 'max_epoch' must not be negative");
  require(c.momentum >= 0 && c.momentum <= 1, "key 'momentum' must lie in [0, 1]");
  require(c.alpha >= 0 && c.alpha <= 1, "key 'alpha' must lie in [0, 1]");
  require(c.init_lr >= 0 && c.min_lr >= 0 && c.weight_decay >= 0,
          "keys 'init_lr', 'min_lr' and 'weight_decay' must not be negative");
}

std::map<std::string, std::string> parse_overrides(const std::vector<std::string>& items,
                                                   const std::string& what) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) fail(what + " " + item, "expected key=value");
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

}  // namespace blip
