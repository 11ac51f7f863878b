// AdamW state <-> torch.optim.AdamW.state_dict(): the fixture's optimizer (saved by torch 1.13)
// loads into LibTorch's AdamW over the tiny model and comes back out identical; the state we write
// loads into a real torch.optim.AdamW and steps to the same parameters as LibTorch.
#include "blip/train/optimizer_state.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "blip/io/checkpoint.h"
#include "checkpoint_test_util.h"
#include "common/expect_error.h"

namespace {

using blip::io::pickle::Value;
namespace bt = blip::train;

constexpr size_t kTinyParams = 183;  // model.parameters() of the tiny model
constexpr size_t kTinyStates = 93;   // parameters that had a gradient (no *_m ones)

class OptimizerState : public ::testing::Test {
 protected:
  void SetUp() override {
    BLIP_REQUIRE_FIXTURES();
    config_ = blip::load_retrieval_config(blip::test::tiny_yaml());
    model_ = blip::models::load_blip_retrieval(config_, blip::test::tiny_pth());
    fixture_ = blip::io::load_pth_object(blip::test::tiny_pth());
    ASSERT_NE(fixture_.get("optimizer"), nullptr);
  }
  const Value& fixture_optimizer() const { return *fixture_.get("optimizer"); }

  // Deterministic gradients for every parameter that requires one.
  void set_grads(torch::optim::AdamW& opt, uint64_t seed) {
    at::manual_seed(seed);
    for (auto& p : opt.param_groups()[0].params())
      if (p.requires_grad()) p.mutable_grad() = at::randn_like(p);
  }

  blip::RetrievalConfig config_;
  blip::models::BlipRetrieval model_{nullptr};
  Value fixture_;
};

TEST_F(OptimizerState, FixtureLoadsAndSavesBackIdentically) {
  torch::optim::AdamW opt(model_->parameters(), torch::optim::AdamWOptions(1e-3));
  ASSERT_EQ(opt.param_groups()[0].params().size(), kTinyParams);
  bt::load_adamw_state_dict(opt, fixture_optimizer(), "fixture");
  EXPECT_EQ(opt.state().size(), kTinyStates);
  const auto& o = static_cast<const torch::optim::AdamWOptions&>(opt.param_groups()[0].options());
  EXPECT_DOUBLE_EQ(o.lr(), 1e-4);  // read from the file, not the constructor's 1e-3
  EXPECT_DOUBLE_EQ(o.weight_decay(), 0.05);

  blip::test::CompareCounts counts;
  const Value mine = bt::adamw_state_dict(opt);
  blip::test::compare_values(mine, fixture_optimizer(), "optimizer", &counts);
  EXPECT_EQ(counts.tensors, 3 * kTinyStates);  // step, exp_avg, exp_avg_sq of each

  // And through a file, as torch.save writes it.
  const std::string path = blip::test::temp_dir() + "/opt.pth";
  Value top = Value::dict();
  top.mutable_dict().set(Value::string("optimizer"), mine);
  blip::io::save_pth_object(path, top);
  blip::test::compare_values(*blip::io::load_pth_object(path).get("optimizer"), fixture_optimizer(),
                             "optimizer from file");
}

TEST_F(OptimizerState, ReloadedOptimizerStepsIdentically) {
  torch::optim::AdamW a(model_->parameters(), blip::test::tiny_adamw_options());
  set_grads(a, 1);
  a.step();  // LibTorch creates the state itself: adamw_state_dict must find it by parameter
  EXPECT_EQ(bt::adamw_state_dict(a).get("state")->as_dict().size(), kTinyStates);

  std::vector<at::Tensor> copies;
  for (const auto& p : model_->parameters())
    copies.push_back(p.detach().clone().requires_grad_(p.requires_grad()));
  torch::optim::AdamW b(copies, torch::optim::AdamWOptions(0.5));
  bt::load_adamw_state_dict(b, bt::adamw_state_dict(a), "a");
  set_grads(a, 2);
  set_grads(b, 2);
  a.step();
  b.step();
  const auto& pa = a.param_groups()[0].params();
  for (size_t i = 0; i < pa.size(); ++i)
    ASSERT_TRUE(at::equal(pa[i], copies[i])) << "parameter " << i;
  // The loaded state is a copy: stepping one optimizer did not move the other's moments.
  blip::test::compare_values(bt::adamw_state_dict(a), bt::adamw_state_dict(b), "after step");
}

TEST_F(OptimizerState, MismatchesNameTheParameter) {
  // Fewer parameters than the file lists.
  auto params = model_->parameters();
  params.pop_back();
  torch::optim::AdamW fewer(params, blip::test::tiny_adamw_options());
  blip::test::expect_error(
      [&] { bt::load_adamw_state_dict(fewer, fixture_optimizer(), "ckpt.pth"); },
      {"ckpt.pth", "183", "182"});

  // A state tensor of the wrong shape: index and both shapes in the message; nothing changed.
  torch::optim::AdamW opt(model_->parameters(), blip::test::tiny_adamw_options());
  const Value bad = blip::io::load_pth_object(blip::test::tiny_pth());
  Value state5 = *bad.get("optimizer")->get("state")->get(std::int64_t{5});  // shares the dict
  const auto shape = state5.get("exp_avg")->as_tensor().sizes().vec();
  state5.mutable_dict().set(Value::string("exp_avg"), Value::tensor(at::zeros({3, 1})));
  std::string expected_shape = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    expected_shape += (i ? ", " : "") + std::to_string(shape[i]);
  expected_shape += "]";
  blip::test::expect_error(
      [&] { bt::load_adamw_state_dict(opt, *bad.get("optimizer"), "ckpt.pth"); },
      {"ckpt.pth", "parameter 5", "exp_avg", "[3, 1]", expected_shape});
  EXPECT_TRUE(opt.state().empty());

  // maximize=True changes the update rule LibTorch implements.
  Value group = bad.get("optimizer")->get("param_groups")->items()[0];
  group.mutable_dict().set(Value::string("maximize"), Value::boolean(true));
  blip::test::expect_error(
      [&] { bt::check_adamw_state_dict(opt, *bad.get("optimizer"), "ckpt.pth"); }, {"maximize"});
}

TEST_F(OptimizerState, OlderTorchIntegerStepLoads) {
  // torch < 1.12 saved 'step' as a Python int.
  const Value sd = blip::io::load_pth_object(blip::test::tiny_pth());
  for (const auto& [key, st] : sd.get("optimizer")->get("state")->as_dict().items()) {
    Value shared = st;  // shares the dict
    shared.mutable_dict().set(Value::string("step"), Value::integer(7));
  }
  torch::optim::AdamW opt(model_->parameters(), blip::test::tiny_adamw_options());
  bt::load_adamw_state_dict(opt, *sd.get("optimizer"), "old");
  ASSERT_EQ(opt.state().size(), kTinyStates);
  for (const auto& [key, st] : opt.state())
    EXPECT_EQ(static_cast<const torch::optim::AdamWParamState&>(*st).step(), 7);
}

// Our state_dict goes into a real torch.optim.AdamW (load_state_dict), which then steps with the
// same gradients as LibTorch: parameters and the state it saves back must agree with ours.
TEST_F(OptimizerState, PythonAdamWLoadsAndStepsLikeLibTorch) {
  if (!blip::test::python_torch_available())
    GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
  torch::optim::AdamW opt(model_->parameters(), blip::test::tiny_adamw_options());
  bt::load_adamw_state_dict(opt, fixture_optimizer(), "fixture");
  set_grads(opt, 3);
  const auto& params = opt.param_groups()[0].params();
  std::vector<Value> values, grads;
  for (const auto& p : params) {
    values.push_back(Value::tensor(p.detach().clone()));
    grads.push_back(p.grad().defined() ? Value::tensor(p.grad().clone()) : Value::none());
  }
  const std::string dir = blip::test::temp_dir();
  Value top = Value::dict();
  top.mutable_dict().set(Value::string("optimizer"), bt::adamw_state_dict(opt));
  top.mutable_dict().set(Value::string("params"), Value::list(values));
  top.mutable_dict().set(Value::string("grads"), Value::list(grads));
  blip::io::save_pth_object(dir + "/in.pth", top);

  const std::string script = R"(
import sys, torch
ck = torch.load(sys.argv[1])
params = [torch.nn.Parameter(t.clone()) for t in ck['params']]
opt = torch.optim.AdamW(params, lr=0.5, weight_decay=0.0)
opt.load_state_dict(ck['optimizer'])
g = opt.param_groups[0]
assert g['lr'] == 1e-4 and g['weight_decay'] == 0.05 and g['betas'] == (0.9, 0.999), g
assert len(opt.state) == 93, len(opt.state)
for p, grad in zip(params, ck['grads']):
    p.grad = grad
opt.step()
torch.save({'params': [p.detach() for p in params], 'optimizer': opt.state_dict()}, sys.argv[2])
print('OK')
)";
  const auto r = blip::test::run_python(
      dir, script, blip::test::quote(dir + "/in.pth") + " " + blip::test::quote(dir + "/out.pth"));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  opt.step();
  const Value out = blip::io::load_pth_object(dir + "/out.pth");
  const auto& py_params = out.get("params")->items();
  ASSERT_EQ(py_params.size(), params.size());
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(at::allclose(params[i], py_params[i].as_tensor(), 1e-6, 1e-9)) << "parameter " << i;
  // Python's state after its step (step 2) loads back and matches ours.
  std::vector<at::Tensor> copies;
  for (const auto& p : params) copies.push_back(p.detach().clone());
  torch::optim::AdamW back(copies, torch::optim::AdamWOptions(1));
  bt::load_adamw_state_dict(back, *out.get("optimizer"), "python");
  ASSERT_EQ(back.state().size(), kTinyStates);
  const Value theirs = bt::adamw_state_dict(back);
  const Value ours = bt::adamw_state_dict(opt);
  size_t compared = 0;
  for (const auto& [key, st] : ours.get("state")->as_dict().items()) {
    const Value* other = theirs.get("state")->get(key.as_int());
    ASSERT_NE(other, nullptr) << key.as_int();
    EXPECT_EQ(other->get("step")->as_tensor().item<float>(), 2.0f);
    for (const char* m : {"exp_avg", "exp_avg_sq"})
      EXPECT_TRUE(at::allclose(st.get(m)->as_tensor(), other->get(m)->as_tensor(), 1e-6, 1e-12))
          << key.as_int() << " " << m;
    ++compared;
  }
  EXPECT_EQ(compared, kTinyStates);
}

}  // namespace
