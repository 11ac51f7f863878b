// Reading BLIP's torch.save checkpoint, writing our own, and cross-checking with Python torch.
#include "blip/io/checkpoint.h"
#include "blip/io/pickle.h"
#include "blip/io/safetensors.h"

#include "common/fixtures.h"
#include "io/test_util.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

using blip::io::NamedTensors;

namespace {

std::string fixture_pth() { return blip::test::blip_ref_dir() + "/tiny_checkpoint.pth"; }

const at::Tensor& find(const NamedTensors& t, const std::string& name) {
  for (const auto& [n, v] : t)
    if (n == name) return v;
  throw std::runtime_error("no tensor " + name);
}

double sum64(const at::Tensor& t) { return t.to(at::kDouble).sum().item<double>(); }

void expect_bitwise_equal(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.scalar_type(), b[i].second.scalar_type()) << a[i].first;
    EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
  }
}

bool python_torch_available() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

std::string run_python(const std::string& script) {
  const std::string cmd = "/usr/bin/python3 -c '" + script + "' 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    pclose(p);
  }
  return out;
}

}  // namespace

TEST(Pth, LoadsBlipCheckpointModel) {
  BLIP_REQUIRE_FIXTURES();
  const auto ckpt = blip::io::load_pth(fixture_pth());
  ASSERT_EQ(ckpt.model.size(), 189u);
  EXPECT_EQ(ckpt.model.front().first, "temp");  // state_dict order
  EXPECT_EQ(ckpt.model[1].first, "image_queue");
  EXPECT_EQ(ckpt.model.back().first, "text_proj_m.bias");

  // Values printed by Python torch.load of the same file.
  const auto& temp = find(ckpt.model, "temp");
  EXPECT_EQ(temp.dim(), 0);
  EXPECT_EQ(temp.scalar_type(), at::kFloat);
  EXPECT_FLOAT_EQ(temp.item<float>(), 0.050099752843379974f);
  const auto& ptr = find(ckpt.model, "ptr_queue");
  EXPECT_EQ(ptr.scalar_type(), at::kLong);
  EXPECT_EQ(ptr.item<int64_t>(), 60);
  EXPECT_EQ(find(ckpt.model, "idx_queue").sum().item<int64_t>(), -2070);
  const auto& pos = find(ckpt.model, "text_encoder.embeddings.position_ids");
  EXPECT_TRUE(at::equal(pos, at::arange(512, at::kLong).unsqueeze(0)));
  const auto& patch = find(ckpt.model, "visual_encoder.patch_embed.proj.weight");
  EXPECT_EQ(patch.sizes(), at::IntArrayRef({64, 3, 16, 16}));
  EXPECT_FLOAT_EQ(patch.view(-1)[0].item<float>(), -0.053952571004629135f);
  EXPECT_NEAR(sum64(patch), -11.012191701294796, 1e-9);
  const auto& words = find(ckpt.model, "text_encoder.embeddings.word_embeddings.weight");
  EXPECT_EQ(words.sizes(), at::IntArrayRef({30524, 24}));
  EXPECT_NEAR(sum64(words), 49.33741121761955, 1e-7);
}

TEST(Pth, ModelMatchesTrainStepBeforeTensors) {
  BLIP_REQUIRE_FIXTURES();
  const auto model = blip::io::load_model_tensors(fixture_pth());
  const auto ref = blip::io::load_safetensors(blip::test::blip_ref_dir() + "/train_step.safetensors");
  int compared = 0;
  double max_abs = 0;
  for (const auto& [name, t] : ref) {
    if (name.rfind("before.", 0) != 0) continue;
    const auto& mine = find(model, name.substr(7));
    ASSERT_EQ(mine.sizes(), t.sizes()) << name;
    max_abs = std::max(max_abs, (mine.to(at::kDouble) - t.to(at::kDouble)).abs().max().item<double>());
    EXPECT_TRUE(at::equal(mine, t)) << name;
    ++compared;
  }
  std::printf("compared %d before.* tensors, max abs diff %g\n", compared, max_abs);
  EXPECT_GT(compared, 10);
  EXPECT_EQ(max_abs, 0.0);
}

TEST(Pth, LoadsOptimizerConfigAndEpoch) {
  BLIP_REQUIRE_FIXTURES();
  const auto ckpt = blip::io::load_pth(fixture_pth());
  ASSERT_TRUE(ckpt.epoch.has_value());
  EXPECT_EQ(*ckpt.epoch, 0);

  ASSERT_TRUE(ckpt.config.is_dict());
  EXPECT_EQ(ckpt.config.get("vit")->as_string(), "tiny");
  EXPECT_EQ(ckpt.config.get("k_test")->as_int(), 10);
  EXPECT_DOUBLE_EQ(ckpt.config.get("alpha")->as_double(), 0.4);
  EXPECT_EQ(ckpt.config.get("image_root")->as_string(), ".");
  EXPECT_FALSE(ckpt.config.get("negative_all_rank")->as_bool());
  const auto cfg = blip::io::pickle::to_json(ckpt.config);
  EXPECT_EQ(cfg["queue_size"], 64);
  EXPECT_EQ(cfg["med_config"], "tiny_med_config.json");
  EXPECT_EQ(cfg.size(), 25u);

  const auto& opt = ckpt.optimizer;
  ASSERT_TRUE(opt.is_dict());
  const auto* groups = opt.get("param_groups");
  ASSERT_TRUE(groups && groups->is_list());
  ASSERT_EQ(groups->items().size(), 1u);
  const auto& g = groups->items()[0];
  EXPECT_DOUBLE_EQ(g.get("lr")->as_double(), 1e-4);
  ASSERT_TRUE(g.get("betas")->is_tuple());
  EXPECT_DOUBLE_EQ(g.get("betas")->items()[0].as_double(), 0.9);
  EXPECT_DOUBLE_EQ(g.get("betas")->items()[1].as_double(), 0.999);
  EXPECT_DOUBLE_EQ(g.get("eps")->as_double(), 1e-8);
  EXPECT_DOUBLE_EQ(g.get("weight_decay")->as_double(), 0.05);
  EXPECT_FALSE(g.get("amsgrad")->as_bool());
  EXPECT_TRUE(g.get("foreach")->is_none());
  EXPECT_EQ(g.get("params")->items().size(), 183u);
  EXPECT_EQ(g.get("params")->items()[2].as_int(), 2);

  const auto* state = opt.get("state");
  ASSERT_TRUE(state && state->is_dict());
  EXPECT_EQ(state->as_dict().size(), 93u);  // parameters that had a gradient
  const auto* s1 = state->get(std::int64_t{1});
  ASSERT_TRUE(s1);
  EXPECT_FLOAT_EQ(s1->get("step")->as_tensor().item<float>(), 1.0f);
  const auto& exp_avg = s1->get("exp_avg")->as_tensor();
  EXPECT_EQ(exp_avg.sizes(), at::IntArrayRef({1, 1, 64}));
  EXPECT_FLOAT_EQ(exp_avg.view(-1)[0].item<float>(), -0.15247735381126404f);
  EXPECT_NEAR(sum64(s1->get("exp_avg_sq")->as_tensor()), 0.06479718645671895, 1e-12);
  EXPECT_FLOAT_EQ(state->get(std::int64_t{0})->get("exp_avg")->as_tensor().item<float>(), -21.585535049438477f);
  EXPECT_EQ(state->get(std::int64_t{93}), nullptr);

  const auto oj = blip::io::pickle::to_json(opt);
  EXPECT_EQ(oj["param_groups"][0]["eps"], 1e-8);
  EXPECT_EQ(oj["state"]["1"]["exp_avg"], "tensor(dtype=float32, shape=[1, 1, 64])");
}

TEST(Pth, KeepsStateDictMetadataAttribute) {
  BLIP_REQUIRE_FIXTURES();
  const auto top = blip::io::load_pth_object(fixture_pth());
  const auto& model = *top.get("model");
  EXPECT_TRUE(model.as_dict().ordered);
  const auto& meta = model.as_dict().attributes.get("_metadata");
  ASSERT_TRUE(meta && meta->is_dict());
  EXPECT_EQ(meta->as_dict().size(), 200u);
  EXPECT_EQ(meta->get("")->get("version")->as_int(), 1);
}

TEST(Pth, RoundTripsPthAndSafetensorsBitwise) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = blip::test::temp_dir();
  const auto top = blip::io::load_pth_object(fixture_pth());
  const auto original = blip::io::load_pth(fixture_pth());

  // pth -> pth, whole object (optimizer, config, epoch, _metadata included)
  blip::io::save_pth_object(dir + "/copy.pth", top);
  EXPECT_FALSE(blip::test::temp_sibling_left(dir + "/copy.pth"));
  const auto copy = blip::io::load_pth(dir + "/copy.pth");
  expect_bitwise_equal(original.model, copy.model);
  EXPECT_EQ(copy.epoch, original.epoch);
  EXPECT_EQ(blip::io::pickle::to_json(copy.config), blip::io::pickle::to_json(original.config));
  const auto& s_orig = original.optimizer.get("state")->as_dict();
  const auto& s_copy = copy.optimizer.get("state")->as_dict();
  ASSERT_EQ(s_orig.size(), s_copy.size());
  for (std::size_t i = 0; i < s_orig.size(); ++i)
    for (const char* k : {"step", "exp_avg", "exp_avg_sq"})
      EXPECT_TRUE(at::equal(s_orig.items()[i].second.get(k)->as_tensor(), s_copy.items()[i].second.get(k)->as_tensor()));

  // pth -> safetensors -> pth (model only)
  blip::io::save_safetensors(dir + "/model.safetensors", original.model);
  const auto st = blip::io::load_model_tensors(dir + "/model.safetensors");
  blip::io::save_pth(dir + "/from_st.pth", st, nlohmann::json{{"vit", "tiny"}}, 3);
  const auto back = blip::io::load_pth(dir + "/from_st.pth");
  EXPECT_EQ(back.epoch, 3);
  EXPECT_EQ(back.config.get("vit")->as_string(), "tiny");
  EXPECT_TRUE(back.optimizer.is_none());
  ASSERT_EQ(back.model.size(), original.model.size());
  for (const auto& [name, t] : original.model) EXPECT_TRUE(at::equal(find(back.model, name), t)) << name;
  expect_bitwise_equal(back.model, st);  // order: safetensors file order, kept by save_pth
}

TEST(Pth, WritesNonContiguousAndViewsAsContiguousCopies) {
  const std::string path = blip::test::temp_dir() + "/views.pth";
  const at::Tensor base = at::randn({4, 6});
  NamedTensors model = {{"base", base}, {"t", base.t()}, {"col", base.select(1, 2)}, {"half", base.to(at::kHalf)},
                        {"flag", base > 0}, {"scalar", at::scalar_tensor(5, at::kLong)}, {"empty", at::empty({0, 3})}};
  blip::io::save_pth(path, model, nullptr);
  const auto back = blip::io::load_pth(path);
  ASSERT_EQ(back.model.size(), model.size());
  for (std::size_t i = 0; i < model.size(); ++i) {
    EXPECT_EQ(back.model[i].first, model[i].first);
    EXPECT_TRUE(back.model[i].second.is_contiguous());
    EXPECT_TRUE(at::equal(back.model[i].second, model[i].second)) << model[i].first;
  }
  EXPECT_TRUE(back.config.is_none());
  EXPECT_FALSE(back.epoch.has_value());
}

TEST(Pth, PythonTorchReadsOurFile) {
  BLIP_REQUIRE_FIXTURES();
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
  const std::string dir = blip::test::temp_dir();
  const auto original = blip::io::load_pth(fixture_pth());
  // Written from our own model (not a copy of the fixture's pickle): a fresh OrderedDict, a JSON config.
  nlohmann::json cfg = blip::io::pickle::to_json(original.config);
  blip::io::PthCheckpoint ckpt = original;
  ckpt.config = blip::io::pickle::from_json(cfg);
  ckpt.model.emplace_back("extra.transposed", at::arange(6, at::kFloat).view({2, 3}).t());
  ckpt.model.emplace_back("extra.bf16", at::full({2}, 1.5, at::kBFloat16));
  const std::string ours = dir + "/ours.pth";
  blip::io::save_pth(ours, ckpt);

  // Python compares every model tensor and the optimizer state with the original fixture.
  const std::string script =
      "import torch\n"
      "a = torch.load(\"" + fixture_pth() + "\", map_location=\"cpu\")\n"
      "b = torch.load(\"" + ours + "\", map_location=\"cpu\")\n"
      "assert list(b.keys()) == [\"model\", \"optimizer\", \"config\", \"epoch\"], list(b.keys())\n"
      "assert type(b[\"model\"]).__name__ == \"OrderedDict\"\n"
      "ka = list(a[\"model\"].keys()); kb = list(b[\"model\"].keys())\n"
      "assert kb[:len(ka)] == ka and kb[len(ka):] == [\"extra.transposed\", \"extra.bf16\"]\n"
      "n = sum(torch.equal(a[\"model\"][k], b[\"model\"][k]) and a[\"model\"][k].dtype == b[\"model\"][k].dtype for k in ka)\n"
      "assert torch.equal(b[\"model\"][\"extra.transposed\"], torch.arange(6.).view(2, 3).t())\n"
      "assert b[\"model\"][\"extra.bf16\"].dtype == torch.bfloat16\n"
      "sa, sb = a[\"optimizer\"][\"state\"], b[\"optimizer\"][\"state\"]\n"
      "m = sum(all(torch.equal(sa[i][k], sb[i][k]) for k in sa[i]) for i in sa)\n"
      "assert a[\"optimizer\"][\"param_groups\"] == b[\"optimizer\"][\"param_groups\"]\n"
      "assert a[\"config\"] == b[\"config\"], b[\"config\"]\n"
      "assert b[\"epoch\"] == 0\n"
      "print(\"OK\", n, m)\n";
  const std::string out = run_python(script);
  EXPECT_NE(out.find("OK 189 93"), std::string::npos) << out;
}
