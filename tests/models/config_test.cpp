// RetrievalConfig / med config loading: fixture and shipped configs, path resolution, overrides,
// and every kind of bad input.
#include <gtest/gtest.h>

#include <filesystem>

#include "blip/config.h"
#include "blip/error.h"
#include "common/fixtures.h"
#include "model_test_util.h"

namespace {

namespace fs = std::filesystem;
using blip::test::expect_error;
using blip::test::write_text;

// Restores the working directory at scope exit.
struct ScopedCwd {
  explicit ScopedCwd(const fs::path& dir) : old(fs::current_path()) { fs::current_path(dir); }
  ~ScopedCwd() { fs::current_path(old); }
  fs::path old;
};

std::string norm(const fs::path& p) { return p.lexically_normal().string(); }

void expect_tiny(const blip::RetrievalConfig& c) {
  const fs::path ref = fs::absolute(blip::test::blip_ref_dir());
  EXPECT_EQ(c.vit, "custom");
  EXPECT_EQ(c.image_size, 64);
  EXPECT_EQ(c.queue_size, 64);
  EXPECT_EQ(c.k_test, 10);
  EXPECT_EQ(c.batch_size_test, 4);
  EXPECT_EQ(c.batch_size_train, 4);
  EXPECT_FALSE(c.vit_grad_ckpt);
  EXPECT_EQ(c.vit_ckpt_layer, 0);
  EXPECT_DOUBLE_EQ(c.init_lr, 1e-4);
  EXPECT_DOUBLE_EQ(c.alpha, 0.4);
  EXPECT_FALSE(c.negative_all_rank);
  EXPECT_DOUBLE_EQ(c.weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(c.min_lr, 0.0);
  EXPECT_EQ(c.max_epoch, 1);
  EXPECT_EQ(c.embed_dim, 16);
  EXPECT_DOUBLE_EQ(c.momentum, 0.995);
  EXPECT_EQ(c.dataset, "coco");
  EXPECT_EQ(c.image_root, norm(ref / "."));
  EXPECT_EQ(c.ann_root, norm(ref / "eval"));
  EXPECT_EQ(c.pretrained, norm(ref / "tiny_checkpoint.pth"));
  EXPECT_EQ(c.med_config, norm(ref / "tiny_med_config.json"));
  EXPECT_EQ(c.tokenizer, norm(ref / ".." / "bert-base-uncased-vocab.txt"));
  EXPECT_TRUE(fs::exists(c.pretrained));
  EXPECT_TRUE(fs::exists(c.tokenizer));
  const blip::VitConfig v = c.vit_config();
  EXPECT_EQ(v.width, 64);
  EXPECT_EQ(v.depth, 2);
  EXPECT_EQ(v.heads, 4);
  EXPECT_EQ(v.patch_size, 16);
  EXPECT_EQ(v.num_patches(), 16);
  EXPECT_DOUBLE_EQ(v.layer_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(v.drop_path_rate, 0.0);
  EXPECT_EQ(c.med.hidden_size, 24);
  EXPECT_EQ(c.med.num_hidden_layers, 2);
  EXPECT_EQ(c.med.num_attention_heads, 3);
  EXPECT_EQ(c.med.intermediate_size, 72);
  EXPECT_EQ(c.med.vocab_size, 30524);
  EXPECT_EQ(c.med.max_position_embeddings, 512);
  EXPECT_DOUBLE_EQ(c.med.layer_norm_eps, 1e-12);
  EXPECT_DOUBLE_EQ(c.med.hidden_dropout_prob, 0.1);
  EXPECT_EQ(c.med.encoder_width, 64);  // set to the ViT width
  EXPECT_TRUE(c.med.add_cross_attention);
}

TEST(RetrievalConfig, TinyFixtureLoadsFromAnyWorkingDirectory) {
  BLIP_REQUIRE_FIXTURES();
  const std::string abs_path = fs::absolute(blip::test::tiny_config_path()).string();
  {
    ScopedCwd cwd(blip::test::temp_dir());
    expect_tiny(blip::load_retrieval_config(abs_path));
  }
  {
    ScopedCwd cwd("/");
    expect_tiny(blip::load_retrieval_config(abs_path));
  }
  {
    ScopedCwd cwd(blip::test::fixtures_root());
    expect_tiny(blip::load_retrieval_config("blip_ref/tiny_config.yaml"));
  }
}

TEST(RetrievalConfig, ShippedConfigsHaveBlipValues) {
  const fs::path configs = fs::path(BLIP_SOURCE_DIR) / "configs";
  const auto coco = blip::load_retrieval_config((configs / "retrieval_coco.yaml").string());
  EXPECT_EQ(coco.vit, "base");
  EXPECT_EQ(coco.image_size, 384);
  EXPECT_EQ(coco.k_test, 256);
  EXPECT_TRUE(coco.negative_all_rank);
  EXPECT_TRUE(coco.vit_grad_ckpt);
  EXPECT_EQ(coco.vit_ckpt_layer, 4);
  EXPECT_EQ(coco.batch_size_test, 64);
  EXPECT_DOUBLE_EQ(coco.init_lr, 1e-5);  // "1e-5" (a string for PyYAML) parses as a number
  EXPECT_EQ(coco.queue_size, 57600);
  EXPECT_EQ(coco.embed_dim, 256);
  EXPECT_EQ(coco.med_config, norm(configs / "med_config.json"));
  EXPECT_EQ(coco.med.hidden_size, 768);
  EXPECT_EQ(coco.med.num_hidden_layers, 12);
  EXPECT_EQ(coco.med.intermediate_size, 3072);
  EXPECT_EQ(coco.med.encoder_width, 768);
  EXPECT_EQ(coco.vit_config().width, 768);
  EXPECT_EQ(coco.vit_config().depth, 12);
  EXPECT_TRUE(coco.vit_config().grad_ckpt);
  EXPECT_FALSE(coco.vit_m_config().grad_ckpt);

  const auto flickr = blip::load_retrieval_config((configs / "retrieval_flickr.yaml").string());
  EXPECT_EQ(flickr.dataset, "flickr");
  EXPECT_EQ(flickr.k_test, 128);
  EXPECT_FALSE(flickr.negative_all_rank);

  const auto large = blip::load_retrieval_config((configs / "retrieval_coco_large.yaml").string());
  EXPECT_EQ(large.vit, "large");
  EXPECT_EQ(large.vit_ckpt_layer, 12);
  EXPECT_EQ(large.batch_size_test, 32);
  EXPECT_DOUBLE_EQ(large.init_lr, 5e-6);
  EXPECT_EQ(large.vit_config().width, 1024);
  EXPECT_EQ(large.vit_config().depth, 24);
  EXPECT_EQ(large.vit_config().heads, 16);
  EXPECT_DOUBLE_EQ(large.vit_config().drop_path_rate, 0.1);  // create_vit('large')
  EXPECT_EQ(large.med.encoder_width, 1024);
  const auto flickr_large =
      blip::load_retrieval_config((configs / "retrieval_flickr_large.yaml").string());
  EXPECT_EQ(flickr_large.vit_ckpt_layer, 10);
  EXPECT_EQ(flickr_large.k_test, 128);
}

TEST(RetrievalConfig, OverridesReplaceKeysBeforeValidation) {
  BLIP_REQUIRE_FIXTURES();
  const fs::path tmp = blip::test::temp_dir();
  ScopedCwd cwd(tmp);
  const auto c = blip::load_retrieval_config(
      blip::test::tiny_config_path(),
      {{"k_test", "5"}, {"image_root", "imgs"}, {"vit_grad_ckpt", "True"}, {"init_lr", "2e-5"},
       {"vit_ckpt_layer", "1"}, {"pretrained", "/abs/model.pth"}});
  EXPECT_EQ(c.k_test, 5);
  EXPECT_EQ(c.image_root, norm(fs::current_path() / "imgs"));  // override paths: cwd-relative
  EXPECT_TRUE(c.vit_grad_ckpt);
  EXPECT_DOUBLE_EQ(c.init_lr, 2e-5);
  EXPECT_EQ(c.pretrained, "/abs/model.pth");
  EXPECT_EQ(c.vit_config().ckpt_layer, 1);
  // A URL is kept as it is.
  const auto u = blip::load_retrieval_config(
      blip::test::tiny_config_path(), {{"pretrained", "https://example.com/m.pth"}});
  EXPECT_EQ(u.pretrained, "https://example.com/m.pth");
  EXPECT_TRUE(blip::is_url(u.pretrained));

  const std::string path = blip::test::tiny_config_path();
  expect_error([&] { blip::load_retrieval_config(path, {{"k_tset", "5"}, {"bogus", "1"}}); },
               {path, "'k_tset' (override)", "'bogus' (override)"});
  expect_error([&] { blip::load_retrieval_config(path, {{"k_test", "many"}}); },
               {path, "'k_test' (override)", "integer", "many"});
  expect_error([&] { blip::load_retrieval_config(path, {{"image_size", "100"}}); },
               {path, "image_size", "multiple of the patch size"});
  expect_error([&] { blip::load_retrieval_config(path, {{"vit_ckpt_layer", "3"}}); },
               {path, "vit_ckpt_layer"});
}

class BadConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = blip::test::temp_dir();
    write_text(dir_ + "/med.json", R"({"hidden_size": 16, "num_attention_heads": 2,
        "num_hidden_layers": 1, "intermediate_size": 32, "vocab_size": 100,
        "architectures": ["BertModel"], "model_type": "bert"})");
  }
  // A valid config (vit custom) with `extra` appended.
  std::string write(const std::string& name, const std::string& extra, bool with_med = true) {
    const std::string path = dir_ + "/" + name;
    write_text(path, std::string("vit: custom\nvit_width: 32\nvit_depth: 1\nvit_heads: 2\n"
                                 "image_size: 32\n") +
                         (with_med ? "med_config: med.json\n" : "") + extra);
    return path;
  }
  std::string dir_;
};

TEST_F(BadConfig, ValidMinimalConfigLoads) {
  const auto c = blip::load_retrieval_config(write("ok.yaml", ""));
  EXPECT_EQ(c.med.hidden_size, 16);
  EXPECT_EQ(c.med.encoder_width, 32);
  EXPECT_EQ(c.vit_config().num_patches(), 4);
}

TEST_F(BadConfig, UnknownKeysAreListedTogether) {
  const std::string p = write("unknown.yaml", "k_tst: 3\nvit_widht: 4\n");
  expect_error([&] { blip::load_retrieval_config(p); }, {p, "unknown keys", "'k_tst'", "'vit_widht'"});
}

TEST_F(BadConfig, WrongTypesNameTheKey) {
  const std::string a = write("type1.yaml", "queue_size: lots\n");
  expect_error([&] { blip::load_retrieval_config(a); }, {a, "'queue_size'", "integer", "lots"});
  const std::string b = write("type2.yaml", "negative_all_rank: maybe\n");
  expect_error([&] { blip::load_retrieval_config(b); }, {b, "'negative_all_rank'", "true or false"});
  const std::string c = write("type3.yaml", "alpha: [1, 2]\n");
  expect_error([&] { blip::load_retrieval_config(c); }, {c, "'alpha'", "number"});
  const std::string d = write("type4.yaml", "dataset: {a: 1}\n");
  expect_error([&] { blip::load_retrieval_config(d); }, {d, "'dataset'", "string"});
  const std::string e = write("type5.yaml", "k_test: 2.5\n");
  expect_error([&] { blip::load_retrieval_config(e); }, {e, "'k_test'", "integer"});
}

TEST_F(BadConfig, MedConfigMissingOrBroken) {
  const std::string no_key = write("nomed.yaml", "", /*with_med=*/false);
  expect_error([&] { blip::load_retrieval_config(no_key); }, {no_key, "med_config", "missing"});
  const std::string absent = write("absent.yaml", "med_config: nowhere.json\n", false);
  expect_error([&] { blip::load_retrieval_config(absent); }, {absent, "nowhere.json", "cannot open"});

  write_text(dir_ + "/bad_med.json", R"({"hidden_size": 16, "num_attention_heads": 3, "hidden_sise": 1})");
  const std::string bad = write("badmed.yaml", "med_config: bad_med.json\n", false);
  expect_error([&] { blip::load_retrieval_config(bad); }, {bad, "bad_med.json", "'hidden_sise'"});
  write_text(dir_ + "/indiv.json", R"({"hidden_size": 16, "num_attention_heads": 3})");
  expect_error([&] { blip::load_med_config(dir_ + "/indiv.json"); },
               {"indiv.json", "not a multiple of num_attention_heads"});
  write_text(dir_ + "/type.json", R"({"hidden_size": "16"})");
  expect_error([&] { blip::load_med_config(dir_ + "/type.json"); },
               {"type.json", "'hidden_size'", "integer"});
  write_text(dir_ + "/act.json", R"({"hidden_act": "relu"})");
  expect_error([&] { blip::load_med_config(dir_ + "/act.json"); }, {"act.json", "relu"});
  write_text(dir_ + "/syntax.json", R"({"hidden_size": )");
  expect_error([&] { blip::load_med_config(dir_ + "/syntax.json"); }, {"syntax.json", "invalid JSON"});
}

TEST_F(BadConfig, MalformedYamlAndStructure) {
  const std::string syntax = dir_ + "/syntax.yaml";
  write_text(syntax, "image_size: [384\nvit: base\n");
  expect_error([&] { blip::load_retrieval_config(syntax); }, {syntax, "invalid YAML"});
  const std::string list = dir_ + "/list.yaml";
  write_text(list, "- a\n- b\n");
  expect_error([&] { blip::load_retrieval_config(list); }, {list, "mapping"});
  const std::string empty = dir_ + "/empty.yaml";
  write_text(empty, "");
  expect_error([&] { blip::load_retrieval_config(empty); }, {empty, "empty"});
  expect_error([&] { blip::load_retrieval_config(dir_ + "/none.yaml"); }, {"none.yaml", "not found"});
}

TEST_F(BadConfig, VitKeysAreChecked) {
  const std::string p = dir_ + "/custom.yaml";
  write_text(p, "vit: custom\nvit_width: 32\nmed_config: med.json\n");
  expect_error([&] { blip::load_retrieval_config(p); }, {p, "vit: custom", "'vit_depth'", "'vit_heads'"});
  const std::string q = dir_ + "/base.yaml";
  write_text(q, "vit: base\nvit_width: 32\nmed_config: med.json\n");
  expect_error([&] { blip::load_retrieval_config(q); }, {q, "'vit_width'", "only apply to vit: custom"});
  const std::string r = dir_ + "/huge.yaml";
  write_text(r, "vit: huge\nmed_config: med.json\n");
  expect_error([&] { blip::load_retrieval_config(r); }, {r, "'vit'", "huge"});
  const std::string t = dir_ + "/heads2.yaml";
  write_text(t, "vit: custom\nvit_width: 32\nvit_depth: 1\nvit_heads: 5\nimage_size: 32\nmed_config: med.json\n");
  expect_error([&] { blip::load_retrieval_config(t); }, {t, "not a multiple of its heads"});
}

}  // namespace
