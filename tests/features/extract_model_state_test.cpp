// extract_features must leave the caller's model as it found it (issue 7): training flags,
// weights and device; it runs in eval mode all the same (dropout off: BLIP's numbers).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include "blip/config.h"
#include "blip/error.h"
#include "blip/features/feature_extractor.h"
#include "blip/io/safetensors.h"
#include "blip/models/blip_retrieval.h"
#include "blip/models/factory.h"
#include "blip/text/tokenizer.h"
#include "common/fixtures.h"

namespace fs = std::filesystem;
using blip::test::blip_ref_dir;

namespace {

std::vector<std::string> forward_images() {
  std::ifstream in(blip_ref_dir() + "/forward.json");
  const auto forward = nlohmann::json::parse(in);
  std::vector<std::string> paths;
  for (const auto& stem : forward["images"])
    for (const auto& e : fs::directory_iterator(blip_ref_dir() + "/images"))
      if (e.is_regular_file() && e.path().stem() == stem.get<std::string>()) paths.push_back(e.path().string());
  return paths;
}

}  // namespace

TEST(ExtractModelState, TrainingFlagsAndWeightsUnchanged) {
  BLIP_REQUIRE_FIXTURES();
  const auto config = blip::load_retrieval_config(blip_ref_dir() + "/tiny_config.yaml");
  auto model = blip::models::load_blip_retrieval(config, "", {}, /*with_momentum=*/false);
  const auto tokenizer = blip::text::load_tokenizer(config.tokenizer);
  const std::vector<std::string> images = forward_images();
  ASSERT_EQ(images.size(), 4u);
  // BLIP's med config keeps dropout 0.1: in train mode the logits would be random.
  model->train();
  model->visual_encoder->eval();  // a caller's frozen ViT stays frozen
  std::map<std::string, bool> before;
  for (const auto& item : model->named_modules()) before[item.key()] = item.value()->is_training();
  const at::Tensor weight = model->itm_head->weight.clone();

  const std::vector<blip::features::Caption> captions{{"a dog on a red sofa", "test"}, {"two cats", "test"}};
  blip::features::ExtractOptions options;
  options.text_batch = 1;
  std::map<std::string, at::Tensor> out;
  for (auto& [n, t] : blip::features::extract_features(*model, *tokenizer, images, captions, options)) out[n] = t;
  int compared = 0;
  for (const auto& item : model->named_modules()) {
    EXPECT_EQ(item.value()->is_training(), before.at(item.key())) << "module '" << item.key() << "'";
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(before.size()));
  EXPECT_GT(compared, 10);
  EXPECT_TRUE(model->is_training());
  EXPECT_FALSE(model->visual_encoder->is_training());
  EXPECT_TRUE(model->text_encoder->is_training());
  EXPECT_TRUE(at::equal(model->itm_head->weight, weight));

  // Dropout was off during the call: the same outputs as from a model in eval mode.
  model->eval();
  options.device = "cpu";
  std::map<std::string, at::Tensor> again;
  for (auto& [n, t] : blip::features::extract_features(*model, *tokenizer, images, captions, options)) again[n] = t;
  EXPECT_FALSE(model->is_training());
  ASSERT_EQ(again.size(), out.size());
  for (const auto& [name, t] : again) EXPECT_TRUE(at::equal(out.at(name), t)) << name;
}

TEST(ExtractModelState, OtherDeviceIsAnErrorNotAMove) {
  BLIP_REQUIRE_FIXTURES();
  const auto config = blip::load_retrieval_config(blip_ref_dir() + "/tiny_config.yaml");
  auto model = blip::models::load_blip_retrieval(config, "", {}, /*with_momentum=*/false);
  const auto tokenizer = blip::text::load_tokenizer(config.tokenizer);
  blip::features::ExtractOptions options;
  options.device = "cuda:0";  // the model is on the CPU (and this machine may have no CUDA)
  try {
    blip::features::extract_features(*model, *tokenizer, {}, {{"a caption", "test"}}, options);
    ADD_FAILURE() << "no error for a device the model is not on";
  } catch (const blip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("device cuda:0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(model->itm_head->weight.device(), at::Device(at::kCPU));
}
