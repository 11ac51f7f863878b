// The data a restricted unpickler can produce from a torch.save pickle: Python's None, bool, int,
// float, str, bytes, tuple, list, dict / OrderedDict (insertion-ordered, any hashable key) and
// tensors, plus the few torch globals the allow-list admits. Values are immutable once built and
// cheap to copy (containers are shared, like Python references).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Storage.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace blip::io::pickle {

class Value;
class Dict;

// A reference to a Python global, e.g. collections.OrderedDict (only allow-listed ones exist).
struct Global {
  std::string module, name;
  std::string qualified() const { return module + "." + name; }
};

// A typed torch storage as persistent_load returns it (normally consumed by _rebuild_tensor_v2).
struct StorageRef {
  at::Storage storage;
  at::ScalarType dtype;
  std::int64_t numel;  // elements of `dtype` the storage holds
};

struct Bytes {
  std::string data;
};
struct Tuple {
  std::vector<Value> items;
};
struct List {
  std::vector<Value> items;
};

class Value {
 public:
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Tensor, Global, Storage };

  Value() = default;  // None
  static Value none() { return {}; }
  static Value boolean(bool b);
  static Value integer(std::int64_t i);
  static Value real(double d);
  static Value string(std::string s);
  static Value bytes(std::string b);
  static Value tuple(std::vector<Value> items);
  static Value list(std::vector<Value> items);
  static Value dict(bool ordered = false);  // empty; fill through mutable_dict()
  static Value tensor(at::Tensor t);
  static Value global(std::string module, std::string name);
  static Value storage(StorageRef s);

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  // "None", "bool", "int", ... as Python would name the type.
  const char* type_name() const;
  bool is_none() const { return kind() == Kind::None; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_float() const { return kind() == Kind::Float; }
  bool is_string() const { return kind() == Kind::String; }
  bool is_bytes() const { return kind() == Kind::Bytes; }
  bool is_tuple() const { return kind() == Kind::Tuple; }
  bool is_list() const { return kind() == Kind::List; }
  bool is_dict() const { return kind() == Kind::Dict; }
  bool is_tensor() const { return kind() == Kind::Tensor; }
  bool is_global() const { return kind() == Kind::Global; }
  bool is_storage() const { return kind() == Kind::Storage; }

  // Accessors throw blip::Error when the value has another kind.
  bool as_bool() const;
  std::int64_t as_int() const;
  double as_double() const;  // a float, or an int converted
  const std::string& as_string() const;
  const std::string& as_bytes() const;
  const std::vector<Value>& items() const;  // of a tuple or a list
  const Dict& as_dict() const;
  const at::Tensor& as_tensor() const;
  const Global& as_global() const;
  const StorageRef& as_storage() const;

  // Dict lookup; nullptr when this is not a dict or the key is absent.
  const Value* get(std::string_view key) const;
  const Value* get(std::int64_t key) const;

  // Mutable access for builders (the unpickler, tests, checkpoint writers).
  std::vector<Value>& mutable_items();
  Dict& mutable_dict();

  // Identity of the shared container (nullptr for scalars): lets graph walks detect sharing.
  const void* container_id() const;

 private:
  using Data = std::variant<std::monostate, bool, std::int64_t, double, std::shared_ptr<const std::string>,
                            std::shared_ptr<const Bytes>, std::shared_ptr<Tuple>, std::shared_ptr<List>,
                            std::shared_ptr<Dict>, at::Tensor, std::shared_ptr<const Global>,
                            std::shared_ptr<const StorageRef>>;
  Data data_;
};

// A Python dict or collections.OrderedDict: insertion-ordered, keys compared like Python's
// (1 == 1.0 == True, str != bytes, tuples element-wise).
class Dict {
 public:
  bool ordered = false;  // collections.OrderedDict rather than a plain dict
  // Instance attributes set by a pickle BUILD (OrderedDict `_metadata` in state dicts); None if unset.
  Value attributes;

  const std::vector<std::pair<Value, Value>>& items() const { return items_; }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  // Inserts, or replaces the value in place when the key exists (like Python). Returns false,
  // changing nothing, when `key` is not hashable (list, dict, tensor, ...).
  bool set(Value key, Value value);
  // Drops every item and attribute (breaks reference cycles).
  void clear();

 private:
  std::vector<std::pair<Value, Value>> items_;
  std::unordered_map<std::string, std::size_t> index_;
};

// Python-equality key of a hashable value; nullopt for unhashable ones.
std::optional<std::string> hash_key(const Value& v);

// JSON for display or config use: dict -> object (non-string keys written as their repr), tuple /
// list -> array, bytes -> "b'..'" escaped, tensor -> "tensor(dtype=float32, shape=[2, 3])",
// global -> "module.name". Strings that are not valid UTF-8 get U+FFFD replacements.
// Throws blip::Error when the value expands to more than `max_nodes` JSON nodes (shared subtrees
// count every time they appear).
nlohmann::json to_json(const Value& v, std::size_t max_nodes = 10'000'000);
// The reverse for plain data: object -> dict (string keys), array -> list, numbers, bools, null.
Value from_json(const nlohmann::json& j);

// A Python-like repr of scalars and keys (used in messages and for non-string JSON keys).
std::string repr(const Value& v);

}  // namespace blip::io::pickle
