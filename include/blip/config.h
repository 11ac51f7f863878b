// Configuration of BLIP's retrieval model: plain structs with BLIP's defaults, and loaders for
// BLIP's own file formats (configs/med_config.json, configs/retrieval_{coco,flickr}.yaml).
//
// Every loader throws blip::Error naming the file (and the key) on bad input.
#pragma once

#include "blip/blip_defaults.h"

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace blip {

// models/vit.py VisionTransformer, as models/blip.py create_vit() builds it.
struct VitConfig {
  int64_t image_size = kImageSize;
  int64_t patch_size = 16;
  int64_t in_channels = 3;
  int64_t width = 768;  // embed_dim
  int64_t depth = 12;
  int64_t heads = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double layer_norm_eps = 1e-6;
  // Dropout inside blocks; create_vit leaves both at 0 (kept for completeness and for tests).
  double drop_rate = 0.0;
  double attn_drop_rate = 0.0;
  // Stochastic depth, linearly increasing from 0 (first block) to this (last block).
  double drop_path_rate = 0.0;
  // Gradient checkpointing of the last `ckpt_layer` blocks (attn and mlp, as BLIP does).
  bool grad_ckpt = false;
  int64_t ckpt_layer = 0;

  int64_t grid_size() const { return image_size / patch_size; }
  int64_t num_patches() const { return grid_size() * grid_size(); }
  int64_t mlp_hidden() const { return static_cast<int64_t>(static_cast<double>(width) * mlp_ratio); }

  // create_vit('base' | 'large', image_size, ...): 768/12/12 and 1024/24/16 (drop_path 0.1 for
  // large, because create_vit passes `0.1 or drop_path_rate`).
  static VitConfig base(int64_t image_size);
  static VitConfig large(int64_t image_size);
};

// BLIP's BertConfig as read from configs/med_config.json (Hugging Face BertConfig keys).
struct BertConfig {
  int64_t vocab_size = 30524;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 512;
  double layer_norm_eps = 1e-12;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t pad_token_id = 0;
  // Width of the image tokens cross-attention reads; BLIP overwrites it with the ViT width.
  int64_t encoder_width = 768;
  bool add_cross_attention = true;
  std::string hidden_act = "gelu";  // only exact GELU is supported
  // Read and kept for round trips; BLIP's BertEmbeddings has no token-type embeddings.
  int64_t type_vocab_size = 2;
  double initializer_range = 0.02;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};
using MedConfig = BertConfig;

// Reads a med_config.json. Unknown keys, wrong types and unsupported values (hidden_act other than
// "gelu", position_embedding_type other than "absolute", hidden_size not divisible by heads)
// throw blip::Error naming the file.
BertConfig load_med_config(const std::string& json_path);

// Every key of BLIP's configs/retrieval_coco.yaml / retrieval_flickr.yaml, plus the keys this
// project adds (med_config, tokenizer, embed_dim, momentum, and vit_* for `vit: custom`).
// Defaults (for keys a file leaves out) are BLIP_Retrieval's constructor defaults where it has one
// (vit base, image_size 384, no gradient checkpointing, embed_dim 256, queue 57600, momentum
// 0.995, negative_all_rank false), else retrieval_coco.yaml's values. image_root defaults to the
// YAML's folder, ann_root to "<folder>/annotation".
struct RetrievalConfig {
  std::string source;  // the YAML file this was read from ("" when built in code)

  std::string image_root;
  std::string ann_root = "annotation";
  std::string dataset = "coco";
  // A local checkpoint path (resolved against the YAML folder) or, as BLIP's yaml has it, a URL
  // (kept as is; a URL must be downloaded by the user before loading).
  std::string pretrained;
  std::string vit = "base";  // base | large | custom
  int64_t batch_size_train = 32;
  int64_t batch_size_test = kBatchSizeTest;
  bool vit_grad_ckpt = false;
  int64_t vit_ckpt_layer = 0;
  double init_lr = 1e-5;
  int64_t image_size = kImageSize;
  int64_t queue_size = 57600;
  double alpha = 0.4;
  int64_t k_test = kTestK;
  bool negative_all_rank = false;
  double weight_decay = 0.05;
  double min_lr = 0.0;
  int64_t max_epoch = 6;

  std::string med_config;  // path to a med_config.json (required)
  std::string tokenizer;   // path to vocab.txt or a SentencePiece .model ("" = not given)
  int64_t embed_dim = 256;
  double momentum = 0.995;
  // BLIP's train transform: RandomResizedCrop scale (min_scale, 1) — create_dataset's min_scale
  // argument, 0.5 for retrieval — and whether RandomAugment(2, 5) runs after the flip.
  double train_min_scale = 0.5;
  bool train_randaugment = true;

  // Only for `vit: custom` (required there, rejected otherwise).
  int64_t vit_width = 0;
  int64_t vit_depth = 0;
  int64_t vit_heads = 0;
  int64_t vit_patch_size = 16;

  // The text encoder config read from `med_config`, with encoder_width set to the ViT width
  // (as BLIP_Retrieval.__init__ does).
  BertConfig med;

  // The ViT config for `vit` at `image_size`, with vit_grad_ckpt / vit_ckpt_layer applied.
  VitConfig vit_config() const;
  // The same for the momentum ViT: create_vit(vit, image_size) without checkpointing.
  VitConfig vit_m_config() const;
};

// Reads a retrieval YAML. `overrides` (e.g. from command-line flags) replace keys before
// validation; their values are parsed as YAML scalars ("true", "1e-5", "64", paths).
// Relative paths in the file (pretrained, med_config, tokenizer, image_root, ann_root) resolve
// against the YAML file's folder; relative paths given as overrides resolve against the current
// directory (where the user typed them). URLs are kept as they are.
// Unknown keys (in the file or the overrides) throw ONE blip::Error listing all of them; wrong
// types name the key and the file; a missing or unreadable med_config is an error.
RetrievalConfig load_retrieval_config(const std::string& yaml_path,
                                      const std::map<std::string, std::string>& overrides = {});

// One key of the retrieval YAML schema and its value in a RetrievalConfig.
struct ConfigEntry {
  std::string key;
  std::variant<std::string, int64_t, double, bool> value;
};
// Every key of the YAML schema (the table load_retrieval_config reads) with its value in
// `config`, in the order of BLIP's retrieval_coco.yaml, then the keys this project adds. The
// vit_width / vit_depth / vit_heads / vit_patch_size keys are listed only for `vit: custom`
// (load_retrieval_config rejects them otherwise), so the entries always load back.
std::vector<ConfigEntry> retrieval_config_entries(const RetrievalConfig& config);

// "key=value" items (e.g. from a command line) as overrides for load_retrieval_config; a
// malformed item throws blip::Error naming `what` (the option it came from) and the item.
std::map<std::string, std::string> parse_overrides(const std::vector<std::string>& items,
                                                   const std::string& what);

// Checks the cross-key invariants (sizes positive, image_size divisible by the patch size,
// width divisible by heads, ckpt layer within depth, ...); throws blip::Error naming `source`.
void validate(const RetrievalConfig& config);

// True for http:// and https:// addresses (BLIP's is_url()).
bool is_url(const std::string& path_or_url);

}  // namespace blip
