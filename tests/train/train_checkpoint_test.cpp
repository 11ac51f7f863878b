// checkpoint_best / checkpoint_last: bit-identical round trips, BLIP's own checkpoint loading,
// Python reading ours with BLIP's keys, strict errors, config.yaml as yaml.dump writes it, and
// atomic writes under SIGKILL.
#include "blip/train/train_checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "blip/io/checkpoint.h"
#include "blip/models/state_dict.h"
#include "blip/train/optimizer_state.h"
#include "checkpoint_test_util.h"
#include "common/expect_error.h"

namespace {

namespace fs = std::filesystem;
namespace bt = blip::train;
using blip::io::pickle::Value;

constexpr size_t kTinyStateKeys = 189;  // README 3.1: the tiny state_dict's entries

class TrainCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    BLIP_REQUIRE_FIXTURES();
    config_ = blip::load_retrieval_config(blip::test::tiny_yaml());
    model_ = blip::models::load_blip_retrieval(config_, blip::test::tiny_pth());
    opt_ = std::make_unique<torch::optim::AdamW>(model_->parameters(),
                                                 blip::test::tiny_adamw_options());
    dir_ = blip::test::temp_dir();
  }

  // One real AdamW step (fresh state) with deterministic gradients.
  void step(torch::optim::AdamW& opt, uint64_t seed) {
    at::manual_seed(seed);
    for (auto& p : opt.param_groups()[0].params())
      if (p.requires_grad()) p.mutable_grad() = at::randn_like(p);
    opt.step();
  }

  // A randomly initialised model of the same config and an optimizer over it.
  std::pair<blip::models::BlipRetrieval, std::unique_ptr<torch::optim::AdamW>> fresh() {
    auto m = blip::models::make_blip_retrieval(config_);
    auto o =
        std::make_unique<torch::optim::AdamW>(m->parameters(), torch::optim::AdamWOptions(0.25));
    return {m, std::move(o)};
  }

  static bt::TrainState sample_state() {
    bt::TrainState s;
    s.epoch = 3;
    s.epoch_step = 11;
    s.global_step = 1234;
    s.best = 0.8125;
    s.best_epoch = 2;
    s.seed = (std::uint64_t{1} << 63) + 5;  // beyond int64: kept by its bit pattern
    s.world_size = 4;
    at::manual_seed(99);
    s.torch_rng_state = at::detail::getDefaultCPUGenerator().get_state();
    s.history = {{"epochs", {{{"epoch", 0}, {"txt_r1", 12.5}}, {{"epoch", 1}, {"txt_r1", 14.0}}}},
                 {"note", "caf\u00e9"}};
    return s;
  }

  static void expect_same_model(blip::models::BlipRetrievalImpl& a,
                                blip::models::BlipRetrievalImpl& b) {
    const auto sa = blip::models::state_entries(a);
    const auto sb = blip::models::state_entries(b);
    ASSERT_EQ(sa.size(), kTinyStateKeys);
    ASSERT_EQ(sa.size(), sb.size());
    for (size_t i = 0; i < sa.size(); ++i) {
      ASSERT_EQ(sa[i].name, sb[i].name);
      EXPECT_EQ(sa[i].tensor.scalar_type(), sb[i].tensor.scalar_type()) << sa[i].name;
      EXPECT_TRUE(at::equal(sa[i].tensor, sb[i].tensor)) << sa[i].name;
    }
  }

  blip::RetrievalConfig config_;
  blip::models::BlipRetrieval model_{nullptr};
  std::unique_ptr<torch::optim::AdamW> opt_;
  std::string dir_;
};

TEST_F(TrainCheckpoint, RoundTripIsBitIdentical) {
  step(*opt_, 5);
  const std::string path = dir_ + "/checkpoint_last.pth";
  const bt::TrainState saved = sample_state();
  bt::save_train_checkpoint(path, *model_, *opt_, config_, saved);

  auto [model, opt] = fresh();
  const auto loaded = bt::load_train_checkpoint(path, *model, *opt);
  ASSERT_TRUE(loaded.has_train_state);
  const bt::TrainState& s = loaded.state;
  EXPECT_EQ(s.epoch, saved.epoch);
  EXPECT_EQ(s.epoch_step, saved.epoch_step);
  EXPECT_EQ(s.global_step, saved.global_step);
  EXPECT_EQ(s.best, saved.best);
  EXPECT_EQ(s.best_epoch, saved.best_epoch);
  EXPECT_EQ(s.seed, saved.seed);
  EXPECT_EQ(s.world_size, saved.world_size);
  ASSERT_TRUE(s.torch_rng_state.defined());
  EXPECT_EQ(s.torch_rng_state.scalar_type(), at::kByte);
  EXPECT_TRUE(at::equal(s.torch_rng_state, saved.torch_rng_state));
  EXPECT_EQ(s.history, saved.history);

  expect_same_model(*model_, *model);
  blip::test::CompareCounts counts;
  blip::test::compare_values(bt::adamw_state_dict(*opt), bt::adamw_state_dict(*opt_), "optimizer",
                             &counts);
  EXPECT_EQ(counts.tensors, 3u * 93u);

  // The restored RNG state draws what the saved one would have.
  at::manual_seed(1);
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  gen.set_state(s.torch_rng_state);
  const at::Tensor after_restore = at::randn({8});
  at::manual_seed(99);
  EXPECT_TRUE(at::equal(after_restore, at::randn({8})));

  // Both continue identically.
  step(*opt_, 6);
  step(*opt, 6);
  expect_same_model(*model_, *model);

  // The BLIP entries are there as BLIP writes them.
  const Value top = blip::io::load_pth_object(path);
  ASSERT_TRUE(top.is_dict());
  std::vector<std::string> keys;
  for (const auto& [k, v] : top.as_dict().items()) keys.push_back(k.as_string());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"model", "optimizer", "config", "epoch", "libblip_train"}));
  EXPECT_EQ(top.get("epoch")->as_int(), saved.epoch);
}

TEST_F(TrainCheckpoint, BestCheckpointHasBlipsFourEntries) {
  step(*opt_, 5);
  const std::string path = dir_ + "/checkpoint_best.pth";
  bt::save_blip_checkpoint(path, *model_, *opt_, config_, 4);
  const Value top = blip::io::load_pth_object(path);
  std::vector<std::string> keys;
  for (const auto& [k, v] : top.as_dict().items()) keys.push_back(k.as_string());
  EXPECT_EQ(keys, (std::vector<std::string>{"model", "optimizer", "config", "epoch"}));
  EXPECT_TRUE(top.get("model")->as_dict().ordered);  // an OrderedDict, like model.state_dict()
  blip::test::compare_values(*top.get("config"), bt::config_value(config_), "config");

  auto [model, opt] = fresh();
  const auto loaded = bt::load_train_checkpoint(path, *model, *opt);
  EXPECT_FALSE(loaded.has_train_state);
  EXPECT_EQ(loaded.state.epoch, 4);
  expect_same_model(*model_, *model);
}

TEST_F(TrainCheckpoint, BlipsOwnCheckpointLoads) {
  auto [model, opt] = fresh();
  const auto loaded = bt::load_train_checkpoint(blip::test::tiny_pth(), *model, *opt);
  EXPECT_FALSE(loaded.has_train_state);
  EXPECT_EQ(loaded.state.epoch, 0);
  EXPECT_EQ(loaded.state.global_step, 0);
  expect_same_model(*model_, *model);
  EXPECT_EQ(opt->state().size(), 93u);
  const Value fixture = blip::io::load_pth_object(blip::test::tiny_pth());
  blip::test::compare_values(bt::adamw_state_dict(*opt), *fixture.get("optimizer"), "optimizer");
}

TEST_F(TrainCheckpoint, ConfigDictHasBlipsKeys) {
  const Value cfg = bt::config_value(config_);
  const Value fixture = blip::io::load_pth_object(blip::test::tiny_pth());
  size_t checked = 0;
  for (const auto& [key, value] : fixture.get("config")->as_dict().items()) {
    const Value* mine = cfg.get(key.as_string());
    ASSERT_NE(mine, nullptr) << key.as_string();
    // Same Python type, except min_lr (the fixture's YAML wrote 0, an int).
    if (key.as_string() != "min_lr") {
      EXPECT_EQ(mine->kind(), value.kind()) << key.as_string();
    }
    ++checked;
  }
  EXPECT_EQ(checked, 25u);
  EXPECT_EQ(cfg.get("init_lr")->as_double(), 1e-4);
  EXPECT_EQ(cfg.get("queue_size")->as_int(), 64);
  EXPECT_EQ(cfg.get("vit")->as_string(), "custom");
  EXPECT_EQ(cfg.as_dict().items()[0].first.as_string(), "image_root");  // BLIP's YAML order
}

TEST_F(TrainCheckpoint, PythonReadsOurCheckpointWithBlipsLayout) {
  if (!blip::test::python_torch_available())
    GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
  step(*opt_, 5);
  const std::string path = dir_ + "/checkpoint_best.pth";
  bt::save_blip_checkpoint(path, *model_, *opt_, config_, 0);
  const std::string script = R"(
import sys, collections, torch
ours, blip = torch.load(sys.argv[1]), torch.load(sys.argv[2])
def check(cond, msg):
    if not cond:
        print('MISMATCH', msg); sys.exit(1)
check(list(ours) == list(blip), ('top keys', list(ours), list(blip)))
check(type(ours['model']) is collections.OrderedDict, type(ours['model']))
check(list(ours['model']) == list(blip['model']), 'model keys')
for k, v in blip['model'].items():
    o = ours['model'][k]
    check(o.shape == v.shape and o.dtype == v.dtype, (k, o.shape, v.shape, o.dtype, v.dtype))
check(type(ours['epoch']) is int, type(ours['epoch']))
check(all(k in ours['config'] for k in blip['config']), 'config keys')
oo, bo = ours['optimizer'], blip['optimizer']
check(list(oo) == list(bo), 'optimizer keys')
check(list(oo['state']) == list(bo['state']), 'state indices')
for i, s in bo['state'].items():
    t = oo['state'][i]
    check(list(t) == list(s), ('state keys', i))
    for k in s:
        check(t[k].dtype == s[k].dtype and t[k].shape == s[k].shape, (i, k))
og, bg = oo['param_groups'][0], bo['param_groups'][0]
check(list(og) == list(bg), ('group keys', list(og), list(bg)))
for k in bg:
    check(type(og[k]) is type(bg[k]), ('group type', k))
check(og['params'] == bg['params'], 'params')
last = torch.load(sys.argv[3])
check(list(last)[:4] == list(blip) and list(last)[4:] == ['libblip_train'], list(last))
st = last['libblip_train']
check(st['version'] == 1 and st['global_step'] == 1234 and st['best'] == 0.8125, st)
torch.set_rng_state(st['torch_rng_state'])  # a valid CPU generator state for torch itself
import json
check(json.loads(st['history'])['note'] == 'caf\u00e9', st['history'])
print('OK', len(ours['model']))
)";
  const std::string last = dir_ + "/checkpoint_last.pth";
  bt::save_train_checkpoint(last, *model_, *opt_, config_, sample_state());
  const auto r = blip::test::run_python(
      dir_, script,
      blip::test::quote(path) + " " + blip::test::quote(blip::test::tiny_pth()) + " " +
          blip::test::quote(last));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("OK 189"), std::string::npos) << r.output;
}

TEST_F(TrainCheckpoint, StrictErrorsNameTheKeyAndChangeNothing) {
  step(*opt_, 5);
  const std::string good = dir_ + "/good.pth";
  bt::save_train_checkpoint(good, *model_, *opt_, config_, sample_state());

  auto [model, opt] = fresh();
  const auto before = blip::models::named_state(*model);
  std::vector<at::Tensor> before_copy;
  for (const auto& [n, t] : before) before_copy.push_back(t.clone());

  // A model tensor of the wrong shape.
  {
    const Value top = blip::io::load_pth_object(good);
    Value sd = *top.get("model");  // shares the dict
    sd.mutable_dict().set(Value::string("vision_proj.weight"), Value::tensor(at::zeros({5, 7})));
    const std::string bad = dir_ + "/bad_shape.pth";
    blip::io::save_pth_object(bad, top);
    blip::test::expect_error([&] { bt::load_train_checkpoint(bad, *model, *opt); },
                             {bad, "vision_proj.weight", "[5, 7]"});
  }
  // A missing model key.
  {
    const Value top = blip::io::load_pth_object(good);
    Value sd = Value::dict(true);
    for (const auto& [k, v] : top.get("model")->as_dict().items())
      if (k.as_string() != "itm_head.bias") sd.mutable_dict().set(k, v);
    Value(top).mutable_dict().set(Value::string("model"), sd);
    const std::string bad = dir_ + "/missing.pth";
    blip::io::save_pth_object(bad, top);
    blip::test::expect_error([&] { bt::load_train_checkpoint(bad, *model, *opt); },
                             {bad, "itm_head.bias"});
  }
  // A newer train-state version.
  {
    const Value top = blip::io::load_pth_object(good);
    Value(*top.get("libblip_train"))
        .mutable_dict()
        .set(Value::string("version"), Value::integer(2));
    const std::string bad = dir_ + "/newer.pth";
    blip::io::save_pth_object(bad, top);
    blip::test::expect_error([&] { bt::load_train_checkpoint(bad, *model, *opt); },
                             {bad, "libblip_train", "version 2"});
  }
  // An optimizer state tensor of the wrong shape (the model itself would load).
  {
    const Value top = blip::io::load_pth_object(good);
    Value(*top.get("optimizer")->get("state")->get(std::int64_t{0}))
        .mutable_dict()
        .set(Value::string("exp_avg_sq"), Value::tensor(at::zeros({2})));
    const std::string bad = dir_ + "/bad_opt.pth";
    blip::io::save_pth_object(bad, top);
    blip::test::expect_error([&] { bt::load_train_checkpoint(bad, *model, *opt); },
                             {bad, "optimizer", "parameter 0", "exp_avg_sq", "[2]"});
  }
  const auto after = blip::models::named_state(*model);
  for (size_t i = 0; i < after.size(); ++i)
    ASSERT_TRUE(at::equal(after[i].second, before_copy[i])) << after[i].first << " changed";
  EXPECT_TRUE(opt->state().empty());
}

TEST_F(TrainCheckpoint, ConfigYamlLoadsBackToTheSameValues) {
  const std::string text = bt::config_yaml(config_);
  // Sorted keys, PyYAML float and bool spelling.
  EXPECT_EQ(text.rfind("alpha: 0.4\nann_root: ", 0), 0u) << text;
  EXPECT_NE(text.find("\ninit_lr: 0.0001\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nnegative_all_rank: false\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nmin_lr: 0.0\n"), std::string::npos) << text;

  blip::RetrievalConfig c = config_;
  c.init_lr = 1e-5;
  c.weight_decay = 1e16;
  c.momentum = 0.1 + 0.2;
  c.dataset = "yes";
  c.train_min_scale = 0.7;
  c.train_randaugment = false;
  const std::string path = dir_ + "/config.yaml";
  std::ofstream(path) << bt::config_yaml(c);
  const auto back = blip::load_retrieval_config(path);
  const auto want = blip::retrieval_config_entries(c);
  const auto got = blip::retrieval_config_entries(back);
  ASSERT_EQ(want.size(), got.size());
  ASSERT_EQ(want.size(), 28u);  // vit: custom lists every key
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].key, got[i].key);
    EXPECT_TRUE(want[i].value == got[i].value) << want[i].key;
  }
  EXPECT_NE(bt::config_yaml(c).find("\ninit_lr: 1.0e-05\n"), std::string::npos);
  EXPECT_NE(bt::config_yaml(c).find("\nweight_decay: 1.0e+16\n"), std::string::npos);
  EXPECT_NE(bt::config_yaml(c).find("\nmomentum: 0.30000000000000004\n"), std::string::npos);
  EXPECT_NE(bt::config_yaml(c).find("\ndataset: 'yes'\n"), std::string::npos);
}

// Our text is byte for byte what PyYAML's yaml.dump writes for the dict it reads from it, for
// strings that need every quoting style and line folding.
TEST_F(TrainCheckpoint, ConfigYamlMatchesPyYaml) {
  if (!blip::test::python_torch_available())
    GTEST_SKIP() << "/usr/bin/python3 with PyYAML is not available";
  const std::vector<std::string> datasets = {
      "coco",
      "",
      "yes",
      "12",
      "1e-5",
      "1.5",
      "0x1F",
      "2020-01-01",
      "~",
      "null",
      "a: b",
      "a:b",
      "#hash",
      "x #y",
      "- dash",
      "-dash",
      "it's",
      "caf\u00e9 \u65e5\u672c",
      "tab\there",
      "line\nbreak",
      " lead",
      "trail ",
      "\"dq\"",
      "back\\slash",
      "emoji \U0001F600",
      "a very long dataset name with many words that goes past the eighty column line width of "
      "pyyaml",
      "another long one: with a colon and 'quotes' that needs single quoting and folding at column "
      "eighty",
      "caf\u00e9 long double quoted value with spaces that must be folded by pyyaml's emitter at "
      "eighty",
  };
  nlohmann::json cases = nlohmann::json::array();
  std::vector<std::string> texts;
  for (const auto& d : datasets) {
    blip::RetrievalConfig c = config_;
    c.dataset = d;
    c.init_lr = 3e-7;
    texts.push_back(bt::config_yaml(c));
    cases.push_back({{"text", texts.back()}, {"dataset", d}});
  }
  std::ofstream(dir_ + "/cases.json") << cases.dump();
  const std::string script = R"(
import sys, json, yaml
bad = 0
for i, case in enumerate(json.load(open(sys.argv[1]))):
    d = yaml.load(case['text'], Loader=yaml.Loader)
    if d['dataset'] != case['dataset']:
        print('VALUE', i, repr(d['dataset']), repr(case['dataset'])); bad += 1
    again = yaml.dump(d)
    if again != case['text']:
        print('TEXT', i); print(again); print(case['text']); bad += 1
print('checked', i + 1)
sys.exit(1 if bad else 0)
)";
  const auto r = blip::test::run_python(dir_, script, blip::test::quote(dir_ + "/cases.json"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("checked " + std::to_string(datasets.size())), std::string::npos)
      << r.output;

  // yaml-cpp (our loader) reads the same strings back.
  for (size_t i = 0; i < datasets.size(); ++i) {
    const std::string path = dir_ + "/c" + std::to_string(i) + ".yaml";
    std::ofstream(path) << texts[i];
    EXPECT_EQ(blip::load_retrieval_config(path).dataset, datasets[i]) << texts[i];
  }
}

// A writer SIGKILLed at random moments never leaves a partial file under the final name: the
// file always loads, and its entries belong to one save (the model's temp equals global_step).
TEST_F(TrainCheckpoint, KilledWriterAlwaysLeavesALoadableFile) {
  step(*opt_, 5);
  const std::string path = dir_ + "/checkpoint_last.pth";
  auto save_version = [&](std::int64_t k) {
    {
      torch::NoGradGuard no_grad;
      model_->temp.fill_(static_cast<double>(k));  // 0-d: no thread pool involved
    }
    bt::TrainState s;
    s.global_step = k;
    bt::save_train_checkpoint(path, *model_, *opt_, config_, s);
  };
  const auto t0 = std::chrono::steady_clock::now();
  save_version(0);
  const double save_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_GT(fs::file_size(path), 10u << 20)
      << "the checkpoint should be big enough to be caught mid-write";

  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  constexpr int kKills = 8;
  int caught_mid_write = 0;
  std::int64_t newest = 0;
  auto [model, opt] = fresh();
  for (int kill_no = 0; kill_no < kKills; ++kill_no) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Child: save newer versions until killed (bounded, in case the parent died).
      for (std::int64_t k = newest + 1; k < newest + 100000; ++k) {
        try {
          save_version(k);
        } catch (...) {
          ::_exit(3);
        }
      }
      ::_exit(0);
    }
    // Kill moments spread from inside the first write to several writes later.
    std::uniform_real_distribution<double> jitter(0.2, 1.0);
    const double wait_ms = save_ms * (0.3 + 0.6 * kill_no) * jitter(rng) + 1;
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(wait_ms));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status))
        << "writer exited on its own with status " << status << " (seed " << seed << ")";

    int leftovers = 0;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().filename().string().rfind("checkpoint_last.pth.tmp.", 0) == 0) {
        ++leftovers;
        fs::remove(e.path());
      }
    caught_mid_write += leftovers > 0;

    const auto loaded = bt::load_train_checkpoint(path, *model, *opt);
    ASSERT_TRUE(loaded.has_train_state);
    EXPECT_EQ(model->temp.item<double>(), static_cast<double>(loaded.state.global_step))
        << "entries from two different saves (kill " << kill_no << ", seed " << seed << ")";
    EXPECT_GE(loaded.state.global_step, newest) << "an older version came back";
    newest = loaded.state.global_step;
  }
  std::cout << "  [kills " << kKills << ": " << caught_mid_write << " mid-write, newest version "
            << newest << ", save " << save_ms << " ms, seed " << seed << "]\n";
  EXPECT_GT(caught_mid_write, 0) << "no kill landed inside a write (seed " << seed << ")";
  EXPECT_GT(newest, 0) << "the writer never finished a save (seed " << seed << ")";
}

}  // namespace
