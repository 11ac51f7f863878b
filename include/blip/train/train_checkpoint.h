// Training checkpoints in BLIP's format (torch.save archives that BLIP's Python code reads back),
// plus the state a resumed run needs, and the config as BLIP records it.
//
//   checkpoint_best.pth: {'model': state_dict, 'optimizer': optimizer.state_dict(),
//                         'config': config dict, 'epoch': n}       (exactly BLIP's four entries)
//   checkpoint_last.pth: the same four entries plus 'libblip_train': {'version': 1, every
//                        TrainState field}; BLIP ignores the extra entry.
//
// Every write goes to a temporary file created exclusively next to the target, is fsynced and then
// renamed over it: a crash at any moment leaves either the previous file or the new one.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include <cstdint>
#include <string>

#include "blip/config.h"
#include "blip/io/pickle_value.h"
#include "blip/models/blip_retrieval.h"

namespace blip::train {

// Version of the 'libblip_train' entry; loading a newer one fails instead of guessing.
inline constexpr std::int64_t kTrainStateVersion = 1;

struct TrainState {
  std::int64_t epoch = 0;        // epoch in progress (or finished when epoch_step == steps of it)
  std::int64_t epoch_step = 0;   // optimizer steps done within `epoch`
  std::int64_t global_step = 0;  // optimizer steps done in all
  double best = 0;               // best validation score so far
  std::int64_t best_epoch = 0;
  std::uint64_t seed = 0;  // stored as a Python int (values >= 2^63 as their int64 bit pattern)
  int world_size = 1;
  // at::Generator state of the default CPU generator (a uint8 tensor; undefined = not saved), for
  // the multinomial negatives. Restoring it is the caller's job.
  at::Tensor torch_rng_state;
  nlohmann::json history;  // opaque (the report's history); stored as its JSON text
};

// The config dict BLIP pickles (the dict its YAML loaded into): every key of the YAML schema with
// its typed value (see blip::retrieval_config_entries), in schema order.
io::pickle::Value config_value(const RetrievalConfig& config);

// What Python's yaml.dump(config) writes for that dict (PyYAML defaults: block style, keys sorted,
// floats as repr, strings quoted only when needed, non-ASCII escaped): BLIP writes it to
// output_dir/config.yaml. load_retrieval_config reads it back to the same values.
std::string config_yaml(const RetrievalConfig& config);

// BLIP's checkpoint: model.state_dict() (momentum encoders and queues included), the optimizer
// state (see optimizer_state.h), config_value(config) and `epoch`.
void save_blip_checkpoint(const std::string& path, const models::BlipRetrievalImpl& model,
                          const torch::optim::AdamW& opt, const RetrievalConfig& config,
                          std::int64_t epoch);

// The same four entries ('epoch' = state.epoch) plus 'libblip_train'.
void save_train_checkpoint(const std::string& path, const models::BlipRetrievalImpl& model,
                           const torch::optim::AdamW& opt, const RetrievalConfig& config,
                           const TrainState& state);

struct LoadedTrainCheckpoint {
  TrainState state;  // without 'libblip_train': only `epoch` is set (BLIP's 'epoch', 0 if absent)
  bool has_train_state = false;
};

// Restores `model` and `opt` from a checkpoint written by save_train_checkpoint,
// save_blip_checkpoint or BLIP itself. Strict: every model key must be in the file with the same
// shape and no other key (the error names them), the optimizer state must fit `opt` (see
// load_adamw_state_dict), and 'libblip_train' must be a version this build reads. Everything is
// checked before anything is changed. The config entry is not read (the caller's config rules).
LoadedTrainCheckpoint load_train_checkpoint(const std::string& path,
                                            models::BlipRetrievalImpl& model,
                                            torch::optim::AdamW& opt);

}  // namespace blip::train
