// The full-size models (vit base / large at 384, configs/med_config.json, queue 57600) have
// exactly BLIP's state_dict: names, order, kinds, dtypes (blip_ref/keys_{base,large}.json) and
// shapes / parameter counts (README section 3.2).
//
// Materialising the full models would take 1.8 / 3.6 GB, so the test builds two cheap variants
// of the very spec make_blip_retrieval derives from the shipped config: one with the real depths
// but tiny widths (names, order, kinds, dtypes must match exactly), and one with the real widths
// but a single ViT block and BERT layer (every shape must match, with the layer index mapped to 0).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "blip/models/blip_retrieval.h"
#include "blip/models/state_dict.h"
#include "common/fixtures.h"

namespace {

using blip::models::BlipRetrievalSpec;

struct KeyCase {
  const char* config;  // shipped config (relative to the source tree)
  const char* keys;    // fixture
  size_t entries;
  int64_t parameters;
  int64_t trainable;
};

void PrintTo(const KeyCase& c, std::ostream* os) { *os << c.keys; }

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kLong: return "int64";
    default: return c10::toString(t);
  }
}

std::string layer_zero(const std::string& name) {
  static const std::regex index(R"((blocks|layer)\.\d+\.)");
  return std::regex_replace(name, index, "$1.0.");
}

class StateKeys : public ::testing::TestWithParam<KeyCase> {};

TEST_P(StateKeys, MatchBlipStateDict) {
  BLIP_REQUIRE_FIXTURES();
  const KeyCase& c = GetParam();
  std::ifstream in(blip::test::blip_ref_dir() + "/" + c.keys);
  const nlohmann::json ref = nlohmann::json::parse(in);
  const auto& keys = ref.at("keys");
  ASSERT_EQ(keys.size(), c.entries);
  ASSERT_EQ(ref.at("num_parameters").get<int64_t>(), c.parameters);

  const blip::RetrievalConfig config =
      blip::load_retrieval_config(std::string(BLIP_SOURCE_DIR) + "/" + c.config);
  const BlipRetrievalSpec full = BlipRetrievalSpec::from_config(config);
  EXPECT_EQ(full.vit.image_size, ref.at("image_size").get<int64_t>());
  EXPECT_EQ(full.embed_dim, ref.at("embed_dim").get<int64_t>());
  EXPECT_EQ(full.queue_size, ref.at("queue_size").get<int64_t>());

  // 1. Real depths, tiny widths: names, order, kinds and dtypes.
  BlipRetrievalSpec narrow = full;
  for (auto* v : {&narrow.vit, &narrow.vit_m}) {
    v->width = 8;
    v->heads = 2;
  }
  narrow.text.hidden_size = 8;
  narrow.text.num_attention_heads = 2;
  narrow.text.intermediate_size = 8;
  narrow.text.vocab_size = 8;
  narrow.text.max_position_embeddings = 8;
  narrow.text.encoder_width = 8;
  narrow.embed_dim = 4;
  narrow.queue_size = 4;
  {
    blip::models::BlipRetrieval model(narrow);
    const auto entries = blip::models::state_entries(*model);
    ASSERT_EQ(entries.size(), keys.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto& k = keys[i];
      const bool same = entries[i].name == k.at("name").get<std::string>() &&
                        entries[i].is_buffer == (k.at("kind").get<std::string>() == "buffer") &&
                        dtype_name(entries[i].tensor.scalar_type()) == k.at("dtype").get<std::string>();
      if (!same && ++mismatches <= 5)
        ADD_FAILURE() << "entry " << i << ": got " << entries[i].name << " ("
                      << (entries[i].is_buffer ? "buffer" : "parameter") << ", "
                      << dtype_name(entries[i].tensor.scalar_type()) << "), expected " << k.dump();
    }
    EXPECT_EQ(mismatches, 0u);
  }

  // 2. Real widths, one block / layer: every shape; parameter counts.
  BlipRetrievalSpec shallow = full;
  shallow.vit.depth = shallow.vit_m.depth = 1;
  shallow.vit.ckpt_layer = 0;
  shallow.text.num_hidden_layers = 1;
  blip::models::BlipRetrieval model(shallow);
  std::map<std::string, blip::models::StateEntry> by_name;
  for (auto& e : blip::models::state_entries(*model)) by_name[e.name] = e;
  int64_t parameters = 0, trainable = 0;
  size_t bad = 0;
  for (const auto& k : keys) {
    const std::string name = k.at("name").get<std::string>();
    auto it = by_name.find(layer_zero(name));
    if (it == by_name.end()) {
      if (++bad <= 5) ADD_FAILURE() << "no entry for " << name;
      continue;
    }
    const auto shape = k.at("shape").get<std::vector<int64_t>>();
    if (it->second.tensor.sizes().vec() != shape && ++bad <= 5)
      ADD_FAILURE() << name << ": shape " << it->second.tensor.sizes() << ", expected "
                    << k.at("shape").dump();
    if (!it->second.is_buffer) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      parameters += n;
      if (it->second.tensor.requires_grad()) trainable += n;
    }
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(parameters, c.parameters);
  EXPECT_EQ(trainable, c.trainable);
  EXPECT_EQ(ref.at("num_trainable_parameters").get<int64_t>(), c.trainable);
}

INSTANTIATE_TEST_SUITE_P(
    Models, StateKeys,
    ::testing::Values(KeyCase{"configs/retrieval_coco.yaml", "keys_base.json", 949, 447486979,
                              223744259},
                      KeyCase{"configs/retrieval_coco_large.yaml", "keys_large.json", 1237,
                              892255747, 446128643}),
    [](const auto& info) { return std::string(info.param.keys).substr(5, 4) == "base" ? "Base" : "Large"; });

}  // namespace
