#include "blip/error.h"
#include "blip/io/checkpoint.h"
#include "blip/io/pickle.h"
#include "io/file_io.h"
#include "io/torch_zip.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace blip::io {

pickle::Value state_dict_value(const NamedTensors& tensors, const std::string& what) {
  pickle::Value d = pickle::Value::dict(/*ordered=*/true);
  auto& dict = d.mutable_dict();
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) fail(what, "tensor '" + name + "' is undefined");
    if (dict.find(name)) fail(what, "two tensors are named '" + name + "'");
    dict.set(pickle::Value::string(name), pickle::Value::tensor(tensor));
  }
  return d;
}

void save_pth_object(const std::string& path, const pickle::Value& object) {
  // Pickle first: every error about the data is raised before any file is created.
  std::vector<std::pair<std::string, at::Tensor>> storages;
  const pickle::StorageSaver save_storage = [&](const at::Tensor& t) {
    storages.emplace_back(std::to_string(storages.size()), t);
    return storages.back().first;
  };
  const std::string pkl = pickle::pickle(object, save_storage, path);

  detail::AtomicFileWriter file(path);
  {
    detail::TorchZipWriter zip(file);
    zip.write_record("data.pkl", pkl.data(), pkl.size());
    for (const auto& [key, t] : storages) zip.write_record("data/" + key, t.data_ptr(), t.nbytes());
    zip.finish();
  }
  file.commit();
}

void save_pth(const std::string& path, const PthCheckpoint& checkpoint) {
  pickle::Value top = pickle::Value::dict();
  auto& d = top.mutable_dict();
  d.set(pickle::Value::string("model"), state_dict_value(checkpoint.model, path));
  if (!checkpoint.optimizer.is_none()) d.set(pickle::Value::string("optimizer"), checkpoint.optimizer);
  if (!checkpoint.config.is_none()) d.set(pickle::Value::string("config"), checkpoint.config);
  if (checkpoint.epoch) d.set(pickle::Value::string("epoch"), pickle::Value::integer(*checkpoint.epoch));
  save_pth_object(path, top);
}

void save_pth(const std::string& path, const NamedTensors& model, const nlohmann::json& config,
              std::optional<std::int64_t> epoch) {
  PthCheckpoint ckpt;
  ckpt.model = model;
  if (!config.is_null()) ckpt.config = pickle::from_json(config);
  ckpt.epoch = epoch;
  save_pth(path, ckpt);
}

}  // namespace blip::io
