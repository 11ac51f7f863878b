// The training step the loop runs (TrainStepper: tokenize, forward, backward, gradient sync,
// AdamW) against BLIP's recorded step (blip_ref/train_step.*, README section 3.7), with the
// recorded negatives replayed.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include <fstream>
#include <map>

#include "blip/io/safetensors.h"
#include "blip/models/factory.h"
#include "blip/models/state_dict.h"
#include "blip/retrieval/text_tensors.h"
#include "blip/text/tokenizer.h"
#include "blip/train/schedule.h"
#include "blip/train/train_step.h"
#include "common/fixtures.h"
#include "common/tensor_expect.h"

namespace {

using blip::test::expect_tensor_close;

std::map<std::string, at::Tensor> load_ref() {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : blip::io::load_safetensors(blip::test::blip_ref_dir() + "/train_step.safetensors"))
    out[name] = t;
  return out;
}

// Names with `prefix`, checked to be at least `min_count` (a renamed fixture key must not pass).
std::vector<std::string> keys_with(const std::map<std::string, at::Tensor>& ref, const std::string& prefix,
                                   size_t min_count) {
  std::vector<std::string> out;
  for (const auto& [k, v] : ref)
    if (k.rfind(prefix, 0) == 0) out.push_back(k);
  EXPECT_GE(out.size(), min_count) << "fixture keys " << prefix << "*";
  return out;
}

// BLIP pads to max_length 35; the stepper by default cuts the batch to its longest caption (one
// of the recorded captions fills all 35 columns, so here both must simply give BLIP's step).
class TrainStepPadding : public ::testing::TestWithParam<bool> {};

TEST_P(TrainStepPadding, StepperMatchesBlipsRecordedStep) {
  BLIP_REQUIRE_FIXTURES();
  const auto ref = load_ref();
  std::ifstream meta_file(blip::test::blip_ref_dir() + "/train_step.json");
  const auto meta = nlohmann::json::parse(meta_file);
  const std::vector<std::string> captions = meta.at("captions");
  ASSERT_EQ(captions.size(), 4u);

  blip::RetrievalConfig config = blip::load_retrieval_config(blip::test::blip_ref_dir() + "/tiny_config.yaml");
  config.med.hidden_dropout_prob = 0.0;  // the recorded step ran without dropout
  config.med.attention_probs_dropout_prob = 0.0;
  auto model = blip::models::load_blip_retrieval(config, blip::test::blip_ref_dir() + "/tiny_checkpoint.pth");
  model->train();
  std::map<std::string, at::Tensor> state;
  for (const auto& e : blip::models::state_entries(*model)) state[e.name] = e.tensor;
  const auto tokenizer = blip::text::load_tokenizer(config.tokenizer);

  // The stepper tokenizes the captions itself: the ids must be the ones BLIP fed the model.
  const auto tokens = blip::retrieval::tokenize_to_tensors(*tokenizer, captions);
  ASSERT_TRUE(at::equal(tokens.input_ids, ref.at("input_ids")));
  ASSERT_TRUE(at::equal(tokens.attention_mask, ref.at("attention_mask")));

  // A fresh AdamW at cosine_lr(epoch 0) = init_lr, as train_retrieval.py after loading.
  const double lr = blip::train::cosine_lr(0, config.max_epoch, config.init_lr, config.min_lr);
  EXPECT_DOUBLE_EQ(lr, 1e-4);
  torch::optim::AdamW adamw(model->parameters(), torch::optim::AdamWOptions(lr).weight_decay(config.weight_decay));
  const blip::dist::DistContext single;
  blip::train::StepOptions options;
  options.trim_padding = GetParam();
  blip::train::TrainStepper stepper(*model, adamw, *tokenizer, options, single);
  const blip::models::ItmNegatives replay{ref.at("neg.image_idx"), ref.at("neg.text_idx")};
  blip::train::StepInputs in;
  in.images = ref.at("image");
  in.captions = captions;
  in.idx = ref.at("idx");
  in.alpha = ref.at("alpha").item<double>();
  in.replay = &replay;
  const auto r = stepper.step(in);

  EXPECT_NEAR(r.loss_ita, ref.at("loss_ita").item<double>(), 1e-5 * std::abs(ref.at("loss_ita").item<double>()));
  EXPECT_NEAR(r.loss_itm, ref.at("loss_itm").item<double>(), 1e-5 * std::abs(ref.at("loss_itm").item<double>()));
  expect_tensor_close("after.image_queue", model->image_queue, ref.at("after.image_queue"), 1e-5, 1e-5);
  expect_tensor_close("after.text_queue", model->text_queue, ref.at("after.text_queue"), 1e-5, 1e-5);
  EXPECT_TRUE(at::equal(model->idx_queue, ref.at("after.idx_queue")));
  EXPECT_TRUE(at::equal(model->ptr_queue, ref.at("after.ptr_queue")));
  for (const auto& key : keys_with(ref, "after_momentum.", 9))
    expect_tensor_close(key, state.at(key.substr(15)), ref.at(key), 1e-5, 1e-5);
  // Gradients stay on the parameters after the step (zero_grad runs before backward).
  for (const auto& key : keys_with(ref, "grad.", 14))
    expect_tensor_close(key, state.at(key.substr(5)).grad(), ref.at(key), 1e-5, 1e-4);
  for (const auto& key : keys_with(ref, "after_step.", 14))
    expect_tensor_close(key, state.at(key.substr(11)), ref.at(key), 1e-5, 1e-5);
  const at::Tensor rows = ref.at("word_emb_rows");
  const at::Tensor word = state.at("text_encoder.embeddings.word_embeddings.weight");
  expect_tensor_close("after_step_rows.word_embeddings", word.index_select(0, rows),
                      ref.at("after_step_rows.text_encoder.embeddings.word_embeddings.weight"), 1e-5, 1e-5);
}

// Short captions: the trimmed step (12 columns instead of 35) gives the padded step's losses,
// gradients and updated weights up to float summation order.
TEST(TrainStep, TrimmedPaddingGivesThePaddedStep) {
  BLIP_REQUIRE_FIXTURES();
  const auto ref = load_ref();
  blip::RetrievalConfig config = blip::load_retrieval_config(blip::test::blip_ref_dir() + "/tiny_config.yaml");
  config.med.hidden_dropout_prob = 0.0;
  config.med.attention_probs_dropout_prob = 0.0;
  const auto tokenizer = blip::text::load_tokenizer(config.tokenizer);
  const std::vector<std::string> captions = {"a dog on the grass", "two red cups on a wooden table",
                                             "a man riding a bike", "a cat"};
  const auto tokens = blip::retrieval::tokenize_to_tensors(*tokenizer, captions);
  ASSERT_LE(tokens.attention_mask.sum(1).max().item<int64_t>(), 12);
  const blip::models::ItmNegatives replay{ref.at("neg.image_idx"), ref.at("neg.text_idx")};
  std::vector<std::map<std::string, at::Tensor>> states;
  std::vector<blip::train::StepResult> results;
  for (bool trim : {false, true}) {
    auto model = blip::models::load_blip_retrieval(config, blip::test::blip_ref_dir() + "/tiny_checkpoint.pth");
    model->train();
    torch::optim::AdamW adamw(model->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.05));
    const blip::dist::DistContext single;
    blip::train::StepOptions options;
    options.trim_padding = trim;
    blip::train::TrainStepper stepper(*model, adamw, *tokenizer, options, single);
    blip::train::StepInputs in;
    in.images = ref.at("image");
    in.captions = captions;
    in.idx = ref.at("idx");
    in.alpha = 0.4;
    in.replay = &replay;
    results.push_back(stepper.step(in));
    std::map<std::string, at::Tensor> state;
    for (const auto& e : blip::models::state_entries(*model)) state[e.name] = e.tensor.clone();
    for (const auto& p : model->named_parameters())
      if (p.value().grad().defined()) state["grad." + p.key()] = p.value().grad().clone();
    states.push_back(std::move(state));
  }
  EXPECT_NEAR(results[1].loss_ita, results[0].loss_ita, 1e-6 * std::abs(results[0].loss_ita));
  EXPECT_NEAR(results[1].loss_itm, results[0].loss_itm, 1e-6 * std::abs(results[0].loss_itm));
  // An attention key bias has an exactly zero gradient (softmax ignores a shift shared by a
  // query's scores): what it gets is rounding noise, which AdamW's first step turns into +-lr
  // whatever its size. Its gradient is compared; its updated value is not (BERT's key.bias, and
  // the ViT's qkv.bias, which holds the key bias in its middle third).
  auto ends_with = [](const std::string& k, const std::string& tail) {
    return k.size() >= tail.size() && k.compare(k.size() - tail.size(), tail.size(), tail) == 0;
  };
  auto key_bias = [&](const std::string& k) { return ends_with(k, ".key.bias") || ends_with(k, ".qkv.bias"); };
  size_t grads = 0, weights = 0;
  for (const auto& [key, value] : states[0]) {
    const bool grad = key.rfind("grad.", 0) == 0;
    if (!grad && key_bias(key)) continue;
    grads += grad;
    weights += !grad;
    expect_tensor_close(key, states[1].at(key), value, 1e-5, 1e-4);
  }
  EXPECT_GE(grads, 14u);
  EXPECT_GE(weights, 14u);
}

INSTANTIATE_TEST_SUITE_P(Padding, TrainStepPadding, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Longest") : std::string("MaxLength");
                         });

TEST(TrainStep, CosineScheduleAndAlphaWarmupAreBlips) {
  // utils.cosine_lr_schedule(epoch, 6, 1e-5, 0): Python's values.
  EXPECT_DOUBLE_EQ(blip::train::cosine_lr(0, 6, 1e-5, 0), 1e-5);
  EXPECT_DOUBLE_EQ(blip::train::cosine_lr(3, 6, 1e-5, 0), 5e-06);
  EXPECT_DOUBLE_EQ(blip::train::cosine_lr(5, 6, 1e-5, 0), 6.698729810778065e-07);
  EXPECT_DOUBLE_EQ(blip::train::cosine_lr(2, 4, 1e-4, 1e-6), 5.05e-05);
  EXPECT_DOUBLE_EQ(blip::train::warmup_alpha(0.4, 0, 0, 10), 0.0);
  EXPECT_DOUBLE_EQ(blip::train::warmup_alpha(0.4, 0, 5, 10), 0.2);
  EXPECT_DOUBLE_EQ(blip::train::warmup_alpha(0.4, 1, 0, 10), 0.4);
}

}  // namespace
