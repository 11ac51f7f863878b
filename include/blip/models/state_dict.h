// State dicts in Python's order, and loading checkpoints into modules (BLIP's load_checkpoint).
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "blip/io/named_tensors.h"

namespace blip::models {

struct StateEntry {
  std::string name;
  at::Tensor tensor;
  bool is_buffer = false;
};

// What Python's module.state_dict() lists, in its order: module by module in registration order
// (pre-order), each module's parameters, then its buffers. Tensors are the module's own (no copy).
std::vector<StateEntry> state_entries(const torch::nn::Module& module);
io::NamedTensors named_state(const torch::nn::Module& module);

struct LoadOptions {
  // strict: every model key must be in the checkpoint with the same shape and every checkpoint key
  // must be in the model, else ONE blip::Error lists all problems and nothing is loaded.
  // non-strict: BLIP's load_checkpoint + load_state_dict(strict=False): shape-mismatched keys are
  // dropped, missing keys keep their current values; everything is reported in LoadReport.
  bool strict = true;
  // Names the checkpoint in messages (the file path).
  std::string source = "checkpoint";
  // Resize visual_encoder.pos_embed / visual_encoder_m.pos_embed bicubically when the checkpoint's
  // patch grid differs from the model's (BLIP does this in both modes).
  bool interpolate_pos_embed = true;
  // Checkpoint keys starting with one of these are skipped and listed as `ignored` (e.g.
  // momentum_state_prefixes() when the model was built without momentum encoders).
  std::vector<std::string> ignore_prefixes;
};

struct ShapeMismatch {
  std::string name;
  std::vector<int64_t> model_shape;
  std::vector<int64_t> checkpoint_shape;
};

struct LoadReport {
  std::string source;
  size_t loaded = 0;                      // tensors copied into the model
  std::vector<std::string> missing;       // model keys the checkpoint lacks (values unchanged)
  std::vector<std::string> unexpected;    // checkpoint keys the model lacks
  std::vector<ShapeMismatch> mismatched;  // dropped: shapes differ
  std::vector<std::string> ignored;       // skipped through LoadOptions::ignore_prefixes
  std::vector<std::string> interpolated;  // pos_embed keys resized to the model's grid

  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  // One line per category that is not empty, e.g. "missing (2): a, b".
  std::string describe() const;
};

// Copies `state` into `module` (values converted to each target's dtype and device), matching
// keys as named_state() names them. See LoadOptions for strict / non-strict semantics.
LoadReport load_weights(torch::nn::Module& module, const io::NamedTensors& state,
                        const LoadOptions& options = {});

}  // namespace blip::models
