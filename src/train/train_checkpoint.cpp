// checkpoint_best.pth / checkpoint_last.pth: BLIP's torch.save layout, plus our resume state.
#include "blip/train/train_checkpoint.h"

#include <ATen/ATen.h>

#include <limits>
#include <type_traits>
#include <utility>
#include <variant>

#include "blip/error.h"
#include "blip/io/checkpoint.h"
#include "blip/models/state_dict.h"
#include "blip/train/optimizer_state.h"

namespace blip::train {

namespace {

using io::pickle::Value;

constexpr const char* kTrainStateKey = "libblip_train";

void set(Value& dict, const char* key, Value value) {
  dict.mutable_dict().set(Value::string(key), std::move(value));
}

// {'model', 'optimizer', 'config', 'epoch'} in the order BLIP's dict literal has them.
Value blip_entries(const models::BlipRetrievalImpl& model, const torch::optim::AdamW& opt,
                   const RetrievalConfig& config, std::int64_t epoch, const std::string& path) {
  Value top = Value::dict();
  set(top, "model", io::state_dict_value(models::named_state(model), path));
  set(top, "optimizer", adamw_state_dict(opt));
  set(top, "config", config_value(config));
  set(top, "epoch", Value::integer(epoch));
  return top;
}

Value train_state_value(const TrainState& s, const std::string& path) {
  Value v = Value::dict();
  set(v, "version", Value::integer(kTrainStateVersion));
  set(v, "epoch", Value::integer(s.epoch));
  set(v, "epoch_step", Value::integer(s.epoch_step));
  set(v, "global_step", Value::integer(s.global_step));
  set(v, "best", Value::real(s.best));
  set(v, "best_epoch", Value::integer(s.best_epoch));
  // Pickle ints here are int64; a seed >= 2^63 keeps its bit pattern (read back unchanged).
  set(v, "seed", Value::integer(static_cast<std::int64_t>(s.seed)));
  set(v, "world_size", Value::integer(s.world_size));
  if (s.torch_rng_state.defined()) {
    if (s.torch_rng_state.scalar_type() != at::kByte || s.torch_rng_state.dim() != 1)
      fail(path, "torch_rng_state must be a 1-D uint8 tensor (at::Generator::get_state())");
    set(v, "torch_rng_state", Value::tensor(s.torch_rng_state));
  } else {
    set(v, "torch_rng_state", Value::none());
  }
  // Invalid UTF-8 in the history must not make a checkpoint write fail hours into training.
  set(v, "history",
      Value::string(s.history.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  return v;
}

class StateReader {
 public:
  StateReader(const Value& dict, const std::string& what) : dict_(dict), what_(what) {}

  const Value& entry(const char* key) const {
    const Value* v = dict_.get(key);
    if (v == nullptr) fail(what_, std::string("has no '") + key + "' entry");
    return *v;
  }
  std::int64_t integer(const char* key, std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t max = std::numeric_limits<std::int64_t>::max()) const {
    const Value& v = entry(key);
    if (!v.is_int()) fail(what_, std::string("'") + key + "' must be an int, got " + v.type_name());
    if (v.as_int() < min || v.as_int() > max)
      fail(what_, std::string("'") + key + "' is out of range: " + std::to_string(v.as_int()));
    return v.as_int();
  }
  double number(const char* key) const {
    const Value& v = entry(key);
    if (!v.is_float() && !v.is_int())
      fail(what_, std::string("'") + key + "' must be a number, got " + v.type_name());
    return v.as_double();
  }

 private:
  const Value& dict_;
  const std::string& what_;
};

TrainState parse_train_state(const Value& v, const std::string& path) {
  const std::string what = path + " '" + kTrainStateKey + "'";
  if (!v.is_dict()) fail(what, std::string("must be a dict, got ") + v.type_name());
  const StateReader r(v, what);
  const std::int64_t version = r.integer("version");
  if (version > kTrainStateVersion)
    fail(what, "format version " + std::to_string(version) +
                   " was written by a newer libblip (this build reads version " +
                   std::to_string(kTrainStateVersion) + ")");
  if (version < 1) fail(what, "unknown format version " + std::to_string(version));

  TrainState s;
  s.epoch = r.integer("epoch", 0);
  s.epoch_step = r.integer("epoch_step", 0);
  s.global_step = r.integer("global_step", 0);
  s.best = r.number("best");
  s.best_epoch = r.integer("best_epoch");
  s.seed = static_cast<std::uint64_t>(r.integer("seed"));
  s.world_size = static_cast<int>(r.integer("world_size", 1, std::numeric_limits<int>::max()));
  const Value& rng = r.entry("torch_rng_state");
  if (rng.is_tensor()) {
    const at::Tensor& t = rng.as_tensor();
    if (t.scalar_type() != at::kByte || t.dim() != 1)
      fail(what, "'torch_rng_state' must be a 1-D uint8 tensor");
    s.torch_rng_state = t.contiguous();
  } else if (!rng.is_none()) {
    fail(what, std::string("'torch_rng_state' must be a tensor or None, got ") + rng.type_name());
  }
  const Value& history = r.entry("history");
  if (!history.is_string())
    fail(what, std::string("'history' must be a str, got ") + history.type_name());
  try {
    s.history = nlohmann::json::parse(history.as_string());
  } catch (const nlohmann::json::exception& e) {
    fail(what, std::string("'history' is not valid JSON: ") + e.what());
  }
  return s;
}

}  // namespace

Value config_value(const RetrievalConfig& config) {
  Value d = Value::dict();
  for (const auto& entry : retrieval_config_entries(config)) {
    Value v = std::visit(
        [](const auto& x) -> Value {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>)
            return Value::string(x);
          else if constexpr (std::is_same_v<T, bool>)
            return Value::boolean(x);
          else if constexpr (std::is_same_v<T, double>)
            return Value::real(x);
          else
            return Value::integer(x);
        },
        entry.value);
    d.mutable_dict().set(Value::string(entry.key), std::move(v));
  }
  return d;
}

void save_blip_checkpoint(const std::string& path, const models::BlipRetrievalImpl& model,
                          const torch::optim::AdamW& opt, const RetrievalConfig& config,
                          std::int64_t epoch) {
  io::save_pth_object(path, blip_entries(model, opt, config, epoch, path));
}

void save_train_checkpoint(const std::string& path, const models::BlipRetrievalImpl& model,
                           const torch::optim::AdamW& opt, const RetrievalConfig& config,
                           const TrainState& state) {
  Value top = blip_entries(model, opt, config, state.epoch, path);
  set(top, kTrainStateKey, train_state_value(state, path));
  io::save_pth_object(path, top);
}

LoadedTrainCheckpoint load_train_checkpoint(const std::string& path,
                                            models::BlipRetrievalImpl& model,
                                            torch::optim::AdamW& opt) {
  const Value top = io::load_pth_object(path);
  if (!top.is_dict()) fail(path, "not a training checkpoint (the top level is not a dict)");
  const Value* state_dict = top.get("model");
  if (state_dict == nullptr) fail(path, "not a training checkpoint (no 'model' entry)");
  const Value* optimizer = top.get("optimizer");
  if (optimizer == nullptr || optimizer->is_none())
    fail(path, "has no 'optimizer' entry: a model-only checkpoint cannot resume training");

  LoadedTrainCheckpoint out;
  if (const Value* epoch = top.get("epoch"); epoch != nullptr) {
    if (!epoch->is_int())
      fail(path, std::string("'epoch' must be an int, got ") + epoch->type_name());
    out.state.epoch = epoch->as_int();
  }
  if (const Value* train = top.get(kTrainStateKey); train != nullptr) {
    out.state = parse_train_state(*train, path);
    out.has_train_state = true;
  }

  // Check everything before changing anything: the optimizer, then the model (load_weights
  // checks all keys and shapes before it copies), then install the optimizer state.
  const std::string optimizer_what = path + " 'optimizer'";
  check_adamw_state_dict(opt, *optimizer, optimizer_what);
  const io::NamedTensors tensors = io::state_dict_tensors(*state_dict, path + " 'model'");
  models::LoadOptions options;
  options.strict = true;
  options.source = path;
  options.interpolate_pos_embed = false;  // resuming needs the same grid, not a resized one
  models::load_weights(model, tensors, options);
  load_adamw_state_dict(opt, *optimizer, optimizer_what);
  return out;
}

}  // namespace blip::train
