// AdamW state <-> PyTorch's optimizer.state_dict() (torch 1.13 layout).
#include "blip/train/optimizer_state.h"

#include <ATen/ATen.h>

#include <cmath>
#include <map>
#include <sstream>
#include <type_traits>
#include <utility>
#include <vector>

#include "blip/error.h"

namespace blip::train {

namespace {

using io::pickle::Value;
using torch::optim::AdamW;
using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

// LibTorch keys its per-parameter state by the TensorImpl address: a string (its ostream form)
// up to torch 2.x, a void* since. The key type is read off the map so both compile.
using StateMap = std::decay_t<decltype(std::declval<const AdamW&>().state())>;
using StateKey = typename StateMap::key_type;

template <class Key = StateKey>
Key state_key(const at::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << static_cast<const void*>(p.unsafeGetTensorImpl());
    return os.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

std::string shape_str(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

void set(Value& dict, const char* key, Value value) {
  dict.mutable_dict().set(Value::string(key), std::move(value));
}

// The parts of one saved parameter state, checked against its parameter.
struct SavedParamState {
  at::Tensor param;
  size_t group = 0;
  std::int64_t step = 0;
  at::Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;
};

struct SavedGroup {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  bool amsgrad = false;
};

struct Parsed {
  std::vector<SavedGroup> groups;
  std::vector<SavedParamState> states;
};

class Reader {
 public:
  explicit Reader(const std::string& what) : what_(what) {}

  [[noreturn]] void fail_at(const std::string& where, const std::string& reason) const {
    fail(what_, where + ": " + reason);
  }

  const Value& entry(const Value& dict, const char* key, const std::string& where) const {
    const Value* v = dict.get(key);
    if (v == nullptr) fail_at(where, std::string("has no '") + key + "' entry");
    return *v;
  }

  double number(const Value& dict, const char* key, const std::string& where) const {
    const Value& v = entry(dict, key, where);
    if (!v.is_float() && !v.is_int())
      fail_at(where, std::string("'") + key + "' must be a number, got " + v.type_name());
    return v.as_double();
  }

  bool flag(const Value& dict, const char* key, const std::string& where) const {
    const Value& v = entry(dict, key, where);
    if (!v.is_bool())
      fail_at(where, std::string("'") + key + "' must be a bool, got " + v.type_name());
    return v.as_bool();
  }

  SavedGroup group(const Value& g, const std::string& where) const {
    SavedGroup out;
    out.lr = number(g, "lr", where);
    const Value& betas = entry(g, "betas", where);
    if (!(betas.is_tuple() || betas.is_list()) || betas.items().size() != 2 ||
        !(betas.items()[0].is_float() || betas.items()[0].is_int()) ||
        !(betas.items()[1].is_float() || betas.items()[1].is_int()))
      fail_at(where, "'betas' must be a pair of numbers");
    out.beta1 = betas.items()[0].as_double();
    out.beta2 = betas.items()[1].as_double();
    out.eps = number(g, "eps", where);
    out.weight_decay = number(g, "weight_decay", where);
    out.amsgrad = flag(g, "amsgrad", where);
    if (const Value* m = g.get("maximize"); m != nullptr && !m->is_none()) {
      if (!m->is_bool()) fail_at(where, "'maximize' must be a bool");
      if (m->as_bool()) fail_at(where, "maximize=True is not supported by LibTorch's AdamW");
    }
    if (!(out.lr >= 0)) fail_at(where, "'lr' must not be negative");
    if (!(out.eps >= 0)) fail_at(where, "'eps' must not be negative");
    if (!(out.weight_decay >= 0)) fail_at(where, "'weight_decay' must not be negative");
    if (!(out.beta1 >= 0 && out.beta1 < 1 && out.beta2 >= 0 && out.beta2 < 1))
      fail_at(where, "'betas' must lie in [0, 1)");
    return out;
  }

  std::int64_t step(const Value& v, const std::string& where) const {
    double s = 0;
    if (v.is_tensor()) {
      const at::Tensor& t = v.as_tensor();
      if (t.numel() != 1)
        fail_at(where, "'step' must be a one-element tensor, got shape " + shape_str(t.sizes()));
      s = t.to(at::kDouble).item<double>();
    } else if (v.is_int() || v.is_float()) {
      s = v.as_double();
    } else {
      fail_at(where, std::string("'step' must be a tensor or a number, got ") + v.type_name());
    }
    constexpr double kMaxExact = 9007199254740992.0;  // 2^53: every whole number below is exact
    if (!(s >= 0) || s != std::floor(s) || s > kMaxExact)
      fail_at(where, "'step' must be a whole number >= 0");
    return static_cast<std::int64_t>(s);
  }

  at::Tensor moment(const Value& state, const char* key, const at::Tensor& param,
                    const std::string& where) const {
    const Value& v = entry(state, key, where);
    if (!v.is_tensor())
      fail_at(where, std::string("'") + key + "' must be a tensor, got " + v.type_name());
    const at::Tensor& t = v.as_tensor();
    if (!at::isFloatingType(t.scalar_type()))
      fail_at(where, std::string("'") + key + "' must be a floating point tensor");
    if (t.sizes() != param.sizes())
      fail_at(where, std::string("'") + key + "' has shape " + shape_str(t.sizes()) +
                         " but the parameter has shape " + shape_str(param.sizes()));
    return t;
  }

 private:
  const std::string& what_;
};

Parsed parse(const AdamW& opt, const Value& sd, const std::string& what) {
  const Reader r(what);
  if (!sd.is_dict())
    fail(what, std::string("optimizer state must be a dict, got ") + sd.type_name());
  const Value& groups = r.entry(sd, "param_groups", "optimizer state");
  const Value& state = r.entry(sd, "state", "optimizer state");
  if (!groups.is_list()) fail(what, "'param_groups' must be a list");
  if (!state.is_dict()) fail(what, "'state' must be a dict");
  const auto& mine = opt.param_groups();
  if (groups.items().size() != mine.size())
    fail(what, "has " + std::to_string(groups.items().size()) + " param groups, the optimizer " +
                   std::to_string(mine.size()));

  Parsed out;
  std::map<std::int64_t, std::pair<at::Tensor, size_t>> param_of;  // saved index -> (ours, group)
  for (size_t gi = 0; gi < mine.size(); ++gi) {
    const std::string where = "param_groups[" + std::to_string(gi) + "]";
    const Value& g = groups.items()[gi];
    if (!g.is_dict()) r.fail_at(where, "must be a dict");
    out.groups.push_back(r.group(g, where));
    const Value& ids = r.entry(g, "params", where);
    if (!ids.is_list()) r.fail_at(where, "'params' must be a list");
    const auto& params = mine[gi].params();
    if (ids.items().size() != params.size())
      r.fail_at(where, "lists " + std::to_string(ids.items().size()) +
                           " parameters, the optimizer's group has " +
                           std::to_string(params.size()));
    for (size_t k = 0; k < params.size(); ++k) {
      const Value& id = ids.items()[k];
      if (!id.is_int()) r.fail_at(where, "'params' must hold ints");
      if (!param_of.emplace(id.as_int(), std::make_pair(params[k], gi)).second)
        r.fail_at(where, "parameter index " + std::to_string(id.as_int()) + " is listed twice");
    }
  }
  for (const auto& [key, value] : state.as_dict().items()) {
    if (!key.is_int())
      fail(what, "'state' keys must be parameter indices (ints), got " + io::pickle::repr(key));
    const std::int64_t index = key.as_int();
    const std::string where = "state of parameter " + std::to_string(index);
    const auto p = param_of.find(index);
    if (p == param_of.end()) r.fail_at(where, "no param group lists this index");
    if (!value.is_dict()) r.fail_at(where, "must be a dict");
    SavedParamState s;
    s.param = p->second.first;
    s.group = p->second.second;
    s.step = r.step(r.entry(value, "step", where), where);
    s.exp_avg = r.moment(value, "exp_avg", s.param, where);
    s.exp_avg_sq = r.moment(value, "exp_avg_sq", s.param, where);
    if (value.get("max_exp_avg_sq") != nullptr)
      s.max_exp_avg_sq = r.moment(value, "max_exp_avg_sq", s.param, where);
    else if (out.groups[s.group].amsgrad)  // LibTorch's amsgrad step reads it unconditionally
      r.fail_at(where, "has no 'max_exp_avg_sq' but its group uses amsgrad");
    out.states.push_back(std::move(s));
  }
  return out;
}

at::Tensor own_copy(const at::Tensor& t, const at::Tensor& param) {
  return t.detach()
      .to(param.device(), param.scalar_type(), /*non_blocking=*/false, /*copy=*/true)
      .contiguous();
}

}  // namespace

Value adamw_state_dict(const AdamW& opt) {
  Value state = Value::dict();
  Value groups = Value::list({});
  std::int64_t index = 0;
  for (const auto& group : opt.param_groups()) {
    const auto& o = static_cast<const AdamWOptions&>(group.options());
    Value g = Value::dict();
    set(g, "lr", Value::real(o.lr()));
    set(g, "betas",
        Value::tuple({Value::real(std::get<0>(o.betas())), Value::real(std::get<1>(o.betas()))}));
    set(g, "eps", Value::real(o.eps()));
    set(g, "weight_decay", Value::real(o.weight_decay()));
    set(g, "amsgrad", Value::boolean(o.amsgrad()));
    set(g, "foreach", Value::none());
    set(g, "maximize", Value::boolean(false));
    set(g, "capturable", Value::boolean(false));
    std::vector<Value> ids;
    for (const auto& p : group.params()) {
      ids.push_back(Value::integer(index));
      const auto it = opt.state().find(state_key(p));
      if (it != opt.state().end()) {
        const auto& s = static_cast<const AdamWParamState&>(*it->second);
        Value ps = Value::dict();
        // torch >= 1.12 keeps the step as a 0-d float32 tensor.
        set(ps, "step",
            Value::tensor(at::scalar_tensor(static_cast<double>(s.step()), at::kFloat)));
        set(ps, "exp_avg", Value::tensor(s.exp_avg()));
        set(ps, "exp_avg_sq", Value::tensor(s.exp_avg_sq()));
        if (o.amsgrad() && s.max_exp_avg_sq().defined())
          set(ps, "max_exp_avg_sq", Value::tensor(s.max_exp_avg_sq()));
        state.mutable_dict().set(Value::integer(index), std::move(ps));
      }
      ++index;
    }
    set(g, "params", Value::list(std::move(ids)));
    groups.mutable_items().push_back(std::move(g));
  }
  Value out = Value::dict();
  set(out, "state", std::move(state));
  set(out, "param_groups", std::move(groups));
  return out;
}

void check_adamw_state_dict(const AdamW& opt, const Value& state, const std::string& what) {
  parse(opt, state, what);
}

void load_adamw_state_dict(AdamW& opt, const Value& state, const std::string& what) {
  const Parsed parsed = parse(opt, state, what);
  // Copies first, so that a failure (out of memory) leaves the optimizer as it was.
  std::vector<std::pair<StateKey, std::unique_ptr<AdamWParamState>>> fresh;
  for (const auto& s : parsed.states) {
    auto ps = std::make_unique<AdamWParamState>();
    ps->step(s.step);
    ps->exp_avg(own_copy(s.exp_avg, s.param));
    ps->exp_avg_sq(own_copy(s.exp_avg_sq, s.param));
    if (s.max_exp_avg_sq.defined()) ps->max_exp_avg_sq(own_copy(s.max_exp_avg_sq, s.param));
    fresh.emplace_back(state_key(s.param), std::move(ps));
  }
  auto& groups = opt.param_groups();
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    auto& o = static_cast<AdamWOptions&>(groups[gi].options());
    const SavedGroup& g = parsed.groups[gi];
    o.lr(g.lr);
    o.betas(std::make_tuple(g.beta1, g.beta2));
    o.eps(g.eps);
    o.weight_decay(g.weight_decay);
    o.amsgrad(g.amsgrad);
  }
  opt.state().clear();
  for (auto& [key, ps] : fresh) opt.state()[key] = std::move(ps);
}

}  // namespace blip::train
