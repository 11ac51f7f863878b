#include "blip/error.h"
#include "blip/io/checkpoint.h"
#include "blip/io/pickle.h"
#include "blip/io/safetensors.h"
#include "io/file_io.h"
#include "io/mapped_file.h"
#include "io/torch_zip.h"
#include "io/zip_check.h"

#include <ATen/Parallel.h>
#include <c10/core/Storage.h>

#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace blip::io {

namespace {
constexpr std::size_t kSniffBytes = 16;
}

namespace {

// A torch.save archive being read. Storages are either read as the pickle names them, or
// (lazy) only sized, and filled by fill() for the tensors the caller keeps: loading a model from
// a checkpoint then skips the optimizer's moment tensors, which are twice the model's size.
// Records stored uncompressed (as torch.save writes them) are not copied: once their CRC-32 is
// checked, storages point into a private mapping of the file.
class PthArchive {
 public:
  explicit PthArchive(const std::string& path)
      : path_(path), zip_(path), map_(detail::MappedFile::map(detail::InputFile(path))) {}

  pickle::Value unpickle(bool lazy) {
    if (!zip_.has_record("data.pkl")) fail(path_, "not a torch.save archive: it has no data.pkl record");
    auto [pkl, pkl_size] = zip_.read_record("data.pkl");
    const pickle::StorageLoader load_storage = [&](const std::string& key, at::ScalarType dtype, std::int64_t numel) {
      const std::uint64_t nbytes = static_cast<std::uint64_t>(numel) * c10::elementSize(dtype);
      if (!lazy) {
        const Record r = locate(key, nbytes, c10::elementSize(dtype));
        return c10::Storage(c10::Storage::use_byte_size_t(), nbytes, take(r, crc(r)), nullptr, false);
      }
      c10::Storage s(c10::Storage::use_byte_size_t(), nbytes, at::DataPtr(nullptr, at::Device(at::kCPU)), nullptr, false);
      pending_.emplace(s.unsafeGetStorageImpl(), Pending{key, c10::elementSize(dtype)});
      return s;
    };
    return pickle::unpickle(static_cast<const std::uint8_t*>(pkl.get()), pkl_size, path_, load_storage);
  }

  // Fills the lazily created storages of `tensors` (each once); the CRCs of the mapped records
  // are computed on all threads.
  void fill(const NamedTensors& tensors) {
    std::vector<std::pair<c10::Storage, Record>> todo;
    for (const auto& [name, t] : tensors) {
      const auto it = pending_.find(t.storage().unsafeGetStorageImpl());
      if (it == pending_.end()) continue;
      todo.emplace_back(t.storage(), locate(it->second.key, t.storage().nbytes(), it->second.align));
      pending_.erase(it);
    }
    std::vector<std::uint32_t> crcs(todo.size());
    at::parallel_for(0, static_cast<std::int64_t>(todo.size()), 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) crcs[i] = crc(todo[i].second);
    });
    for (std::size_t i = 0; i < todo.size(); ++i) todo[i].first.set_data_ptr_noswap(take(todo[i].second, crcs[i]));
  }

 private:
  struct Pending {
    std::string key;
    std::size_t align;  // the element size
  };
  // A storage record, and where its bytes lie when they can be mapped: stored uncompressed, of
  // the size the pickle declares, aligned for its elements.
  struct Record {
    std::string name;
    std::uint64_t nbytes;
    std::optional<detail::TorchZipReader::StoredRecord> stored;
  };

  Record locate(const std::string& key, std::uint64_t nbytes, std::size_t align) const {
    Record r{"data/" + key, nbytes, std::nullopt};
    if (!zip_.has_record(r.name)) fail(path_, "tensor storage record '" + r.name + "' is missing from the archive");
    if (map_ && nbytes > 0) {
      const auto s = zip_.stored_record(r.name);
      if (s && s->size == nbytes && s->offset % align == 0 && s->offset <= map_->size() &&
          s->size <= map_->size() - s->offset)
        r.stored = s;
    }
    return r;
  }

  std::uint32_t crc(const Record& r) const {
    return r.stored ? detail::crc32(map_->data() + r.stored->offset, r.stored->size) : 0;
  }

  // The record's bytes: a view of the mapping when it is mapped (`crc` is its computed CRC-32),
  // else read into memory.
  at::DataPtr take(const Record& r, std::uint32_t crc) const {
    if (!r.stored) return read(r.name, r.nbytes);
    if (crc != r.stored->crc32) fail(path_, "tensor storage record '" + r.name + "' fails its CRC check (corrupt file)");
    return detail::MappedFile::data_ptr(map_, r.stored->offset);
  }

  at::DataPtr read(const std::string& name, std::uint64_t expected) const {
    auto [data, size] = zip_.read_record(name);
    if (size != expected)
      fail(path_, "tensor storage record '" + name + "' holds " + std::to_string(size) +
                      " bytes but the pickle declares " + std::to_string(expected) + " bytes");
    return std::move(data);
  }

  std::string path_;
  detail::TorchZipReader zip_;
  std::shared_ptr<detail::MappedFile> map_;  // null when the system refused the mapping
  std::unordered_map<const c10::StorageImpl*, Pending> pending_;
};

// The state dict of a checkpoint object: its 'model' entry, or the object itself.
const pickle::Value& model_entry(const pickle::Value& top, const std::string& path) {
  if (!top.is_dict()) fail(path, std::string("checkpoint holds a ") + top.type_name() + ", not a dict");
  const pickle::Value* model = top.get("model");
  return model ? *model : top;
}

std::string model_what(const pickle::Value& top, const std::string& path) {
  return top.get("model") ? path + " ['model']" : path;
}

}  // namespace

pickle::Value load_pth_object(const std::string& path) { return PthArchive(path).unpickle(/*lazy=*/false); }

NamedTensors state_dict_tensors(const pickle::Value& dict, const std::string& what) {
  if (!dict.is_dict()) fail(what, std::string("state dict is a ") + dict.type_name() + ", not a dict");
  NamedTensors out;
  out.reserve(dict.as_dict().size());
  for (const auto& [key, value] : dict.as_dict().items()) {
    if (!key.is_string()) fail(what, "state dict key " + pickle::repr(key) + " is not a string");
    if (!value.is_tensor())
      fail(what, "state dict entry '" + key.as_string() + "' is a " + value.type_name() + ", not a tensor");
    out.emplace_back(key.as_string(), value.as_tensor());
  }
  return out;
}

PthCheckpoint load_pth(const std::string& path) {
  const pickle::Value top = load_pth_object(path);
  PthCheckpoint ckpt;
  ckpt.model = state_dict_tensors(model_entry(top, path), model_what(top, path));
  if (!top.get("model")) return ckpt;
  if (const auto* v = top.get("optimizer")) ckpt.optimizer = *v;
  if (const auto* v = top.get("config")) ckpt.config = *v;
  if (const auto* v = top.get("epoch"); v && !v->is_none()) {
    if (!v->is_int()) fail(path, std::string("'epoch' is a ") + v->type_name() + ", not an int");
    ckpt.epoch = v->as_int();
  }
  return ckpt;
}

CheckpointFormat sniff_checkpoint_format(const std::string& path) {
  const std::string head = detail::read_prefix(path, kSniffBytes);
  if (detail::looks_like_zip(head)) return CheckpointFormat::Pth;
  if (head.size() >= 9 && head[8] == '{') {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(head[i]);
    if (n >= 2 && n <= kSafetensorsMaxHeaderBytes) return CheckpointFormat::Safetensors;
  }
  return CheckpointFormat::Unknown;
}

NamedTensors load_model_tensors(const std::string& path) {
  const detail::InputFile file(path);  // reports a missing or unreadable file by name
  switch (sniff_checkpoint_format(path)) {
    case CheckpointFormat::Pth: {
      PthArchive archive(path);
      const pickle::Value top = archive.unpickle(/*lazy=*/true);
      NamedTensors model = state_dict_tensors(model_entry(top, path), model_what(top, path));
      archive.fill(model);
      return model;
    }
    case CheckpointFormat::Safetensors: return load_safetensors(path);
    case CheckpointFormat::Unknown: break;
  }
  if (file.size() == 0) fail(path, "checkpoint file is empty");
  const std::string head = detail::read_prefix(path, 2);
  if (head == "\x80\x02")
    fail(path, "legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with torch.save in a "
               "current PyTorch");
  fail(path, "not a checkpoint: neither a torch.save zip archive (.pth) nor a safetensors file");
}

}  // namespace blip::io
