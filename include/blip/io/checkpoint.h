// BLIP checkpoints: torch.save zip archives (.pth) read through a restricted unpickler, and
// safetensors files. BLIP saves {'model': state_dict, 'optimizer': ..., 'config': ..., 'epoch': n}.
#pragma once

#include "blip/io/named_tensors.h"
#include "blip/io/pickle_value.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace blip::io {

struct PthCheckpoint {
  NamedTensors model;         // the state dict, in the file's order
  pickle::Value optimizer;    // optimizer.state_dict(); None when absent
  pickle::Value config;       // the training config dict; None when absent
  std::optional<std::int64_t> epoch;
};

// The whole unpickled object of a torch.save archive (tensors on the CPU; tensors that share a
// storage in the file share memory). Storage records stored uncompressed, as torch.save writes
// them, are checked against their CRC-32 and then not copied: the tensors point into a private
// (copy-on-write) mapping of the file, which lives as long as they do. Throws blip::Error naming the file for anything malformed
// or not allow-listed (see pickle.h).
pickle::Value load_pth_object(const std::string& path);

// A .pth checkpoint. When the top level is a dict holding 'model', that entry is the state dict
// and 'optimizer', 'config', 'epoch' are picked up when present; otherwise the top level itself
// must be a dict of tensors (a bare state dict).
PthCheckpoint load_pth(const std::string& path);

// The model tensors of a checkpoint of either format, told apart by content, not extension:
// a zip archive is read with load_pth (its model), anything else must be safetensors.
NamedTensors load_model_tensors(const std::string& path);

enum class CheckpointFormat { Pth, Safetensors, Unknown };
// Looks at the first bytes only; a missing or unreadable file is Unknown.
CheckpointFormat sniff_checkpoint_format(const std::string& path);

// Writes `object` as torch.save does (zip archive, pickle protocol 2) to a temporary file created
// exclusively next to `path` (`<path>.tmp.<pid>.<n>`), fsyncs it and renames it over `path`. Each distinct tensor gets its own contiguous storage record.
void save_pth_object(const std::string& path, const pickle::Value& object);

// Writes {'model': OrderedDict(model), 'optimizer': .., 'config': .., 'epoch': ..}, leaving out
// the entries that are None / unset.
void save_pth(const std::string& path, const PthCheckpoint& checkpoint);
void save_pth(const std::string& path, const NamedTensors& model, const nlohmann::json& config,
              std::optional<std::int64_t> epoch = std::nullopt);

// The state dict held by a dict value (keys must be str, values tensors); `what` names it in errors.
NamedTensors state_dict_tensors(const pickle::Value& dict, const std::string& what);
// An OrderedDict value holding `tensors` (as model.state_dict() returns).
pickle::Value state_dict_value(const NamedTensors& tensors, const std::string& what);

}  // namespace blip::io
