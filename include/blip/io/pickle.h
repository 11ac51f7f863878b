// A restricted pickle reader and a minimal pickle writer for torch.save checkpoints.
//
// The reader implements only what a torch.save pickle (protocols 2 to 4) uses and admits only the
// globals needed to rebuild tensors and state dicts: collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter(_with_state), the typed storage classes
// (torch.FloatStorage, ...), torch.device and _codecs.encode (protocol-2 bytes). Any other global
// (os.system, builtins.eval, ...) or opcode is rejected with blip::Error; no code is ever run.
// Every length, memo index, stack access, nesting depth and tensor extent is checked.
#pragma once

#include "blip/io/pickle_value.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace blip::io::pickle {

// Resolves torch's persistent id ('storage', <T>Storage, key, location, numel) to CPU memory:
// returns a storage of exactly numel elements of dtype. Called once per distinct key.
using StorageLoader =
    std::function<at::Storage(const std::string& key, at::ScalarType dtype, std::int64_t numel)>;

struct UnpickleOptions {
  std::size_t max_depth = 100;  // deepest container nesting accepted in the result
};

// Unpickles `data`; `what` (normally the file path) starts every error message.
// Tensors sharing a storage key share memory in the result, as in PyTorch.
Value unpickle(const std::uint8_t* data, std::size_t size, const std::string& what,
               const StorageLoader& load_storage, const UnpickleOptions& options = {});

// Receives each distinct tensor (contiguous, CPU) to be stored; returns its storage key.
using StorageSaver = std::function<std::string(const at::Tensor& contiguous_cpu)>;

// Pickles `value` with protocol 2 the way torch.save does: tensors as
// _rebuild_tensor_v2(persistent storage, 0, size, stride, False, OrderedDict()), dicts with their
// OrderedDict-ness and BUILD attributes, shared containers and tensors memoised.
// Non-contiguous tensors are stored as contiguous copies. Throws blip::Error naming `what` for
// values that cannot be pickled (bare storages, unsupported dtypes, nesting deeper than 256).
std::string pickle(const Value& value, const StorageSaver& save_storage, const std::string& what);

// The dtype of a torch storage class name ("FloatStorage" -> kFloat); nullopt if unknown.
std::optional<at::ScalarType> storage_dtype(const std::string& class_name);
// The storage class name of a dtype; nullptr when torch has none that we support.
const char* storage_class(at::ScalarType dtype);

}  // namespace blip::io::pickle
