#include "blip/io/pickle_value.h"

#include "blip/error.h"
#include "core/utf8.h"

#include <c10/core/ScalarType.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace blip::io::pickle {

namespace {

constexpr const char* kWhat = "pickle value";
// Bounds for hashing keys: a tuple key built from shared sub-tuples can be exponentially large.
constexpr std::size_t kMaxKeyDepth = 32;
constexpr std::size_t kMaxKeyBytes = 1 << 20;
constexpr std::size_t kMaxJsonDepth = 256;

[[noreturn]] void wrong_kind(const Value& v, const char* wanted) {
  fail(kWhat, std::string("expected ") + wanted + ", got " + v.type_name());
}

std::string format_double(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";  // Python writes 1.0, not 1
  return s;
}

std::string quote(std::string_view s, bool bytes) {
  std::string out = bytes ? "b'" : "'";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\' || c == '\'') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  out += '\'';
  return bytes ? out : utf8::sanitize(out);
}

bool hash_key_into(const Value& v, std::string& out, std::size_t depth) {
  if (depth > kMaxKeyDepth || out.size() > kMaxKeyBytes) return false;
  switch (v.kind()) {
    case Value::Kind::None: out += 'N'; return true;
    case Value::Kind::Bool: out += v.as_bool() ? "I1;" : "I0;"; return true;
    case Value::Kind::Int: out += 'I' + std::to_string(v.as_int()) + ';'; return true;
    case Value::Kind::Float: {
      const double d = v.as_double();
      // Integral floats equal the int of the same value in Python, so they share its key.
      if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.2e18) {
        out += 'I' + std::to_string(static_cast<std::int64_t>(d)) + ';';
      } else {
        std::uint64_t bits;
        std::memcpy(&bits, &d, sizeof bits);
        out += 'F' + std::to_string(bits) + ';';
      }
      return true;
    }
    case Value::Kind::String:
    case Value::Kind::Bytes: {
      const std::string& s = v.is_string() ? v.as_string() : v.as_bytes();
      out += v.is_string() ? 'S' : 'B';
      out += std::to_string(s.size()) + ':';
      out += s;
      return out.size() <= kMaxKeyBytes;
    }
    case Value::Kind::Tuple:
      out += "T" + std::to_string(v.items().size()) + '(';
      for (const auto& item : v.items())
        if (!hash_key_into(item, out, depth + 1)) return false;
      out += ')';
      return true;
    case Value::Kind::Global: out += 'G' + v.as_global().qualified() + ';'; return true;
    default: return false;
  }
}

const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

std::string describe_tensor(const at::Tensor& t) {
  std::string s = std::string("tensor(dtype=") + dtype_name(t.scalar_type()) + ", shape=[";
  for (std::int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "])";
}

nlohmann::json to_json_rec(const Value& v, std::size_t depth, std::size_t& budget) {
  if (budget == 0) fail(kWhat, "too large to convert to JSON");
  --budget;
  if (depth > kMaxJsonDepth) fail(kWhat, "nested too deeply to convert to JSON");
  switch (v.kind()) {
    case Value::Kind::None: return nullptr;
    case Value::Kind::Bool: return v.as_bool();
    case Value::Kind::Int: return v.as_int();
    case Value::Kind::Float: return v.as_double();
    case Value::Kind::String: return utf8::sanitize(v.as_string());
    case Value::Kind::Bytes: return quote(v.as_bytes(), true);
    case Value::Kind::Tuple:
    case Value::Kind::List: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : v.items()) arr.push_back(to_json_rec(item, depth + 1, budget));
      return arr;
    }
    case Value::Kind::Dict: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& [key, value] : v.as_dict().items()) {
        const std::string name = key.is_string() ? utf8::sanitize(key.as_string()) : repr(key);
        obj[name] = to_json_rec(value, depth + 1, budget);
      }
      return obj;
    }
    case Value::Kind::Tensor: return describe_tensor(v.as_tensor());
    case Value::Kind::Global: return v.as_global().qualified();
    case Value::Kind::Storage:
      return std::string("storage(dtype=") + dtype_name(v.as_storage().dtype) +
             ", numel=" + std::to_string(v.as_storage().numel) + ")";
  }
  return nullptr;
}

}  // namespace

Value Value::boolean(bool b) {
  Value v;
  v.data_ = b;
  return v;
}
Value Value::integer(std::int64_t i) {
  Value v;
  v.data_ = i;
  return v;
}
Value Value::real(double d) {
  Value v;
  v.data_ = d;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.data_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::bytes(std::string b) {
  Value v;
  v.data_ = std::make_shared<const Bytes>(Bytes{std::move(b)});
  return v;
}
Value Value::tuple(std::vector<Value> items) {
  Value v;
  v.data_ = std::make_shared<Tuple>(Tuple{std::move(items)});
  return v;
}
Value Value::list(std::vector<Value> items) {
  Value v;
  v.data_ = std::make_shared<List>(List{std::move(items)});
  return v;
}
Value Value::dict(bool ordered) {
  Value v;
  auto d = std::make_shared<Dict>();
  d->ordered = ordered;
  v.data_ = std::move(d);
  return v;
}
Value Value::tensor(at::Tensor t) {
  Value v;
  v.data_ = std::move(t);
  return v;
}
Value Value::global(std::string module, std::string name) {
  Value v;
  v.data_ = std::make_shared<const Global>(Global{std::move(module), std::move(name)});
  return v;
}
Value Value::storage(StorageRef s) {
  Value v;
  v.data_ = std::make_shared<const StorageRef>(std::move(s));
  return v;
}

const char* Value::type_name() const {
  switch (kind()) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return as_dict().ordered ? "OrderedDict" : "dict";
    case Kind::Tensor: return "Tensor";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
  }
  return "?";
}

bool Value::as_bool() const {
  if (!is_bool()) wrong_kind(*this, "bool");
  return std::get<bool>(data_);
}
std::int64_t Value::as_int() const {
  if (!is_int()) wrong_kind(*this, "int");
  return std::get<std::int64_t>(data_);
}
double Value::as_double() const {
  if (is_int()) return static_cast<double>(std::get<std::int64_t>(data_));
  if (!is_float()) wrong_kind(*this, "float");
  return std::get<double>(data_);
}
const std::string& Value::as_string() const {
  if (!is_string()) wrong_kind(*this, "str");
  return *std::get<std::shared_ptr<const std::string>>(data_);
}
const std::string& Value::as_bytes() const {
  if (!is_bytes()) wrong_kind(*this, "bytes");
  return std::get<std::shared_ptr<const Bytes>>(data_)->data;
}
const std::vector<Value>& Value::items() const {
  if (is_tuple()) return std::get<std::shared_ptr<Tuple>>(data_)->items;
  if (is_list()) return std::get<std::shared_ptr<List>>(data_)->items;
  wrong_kind(*this, "tuple or list");
}
const Dict& Value::as_dict() const {
  if (!is_dict()) wrong_kind(*this, "dict");
  return *std::get<std::shared_ptr<Dict>>(data_);
}
const at::Tensor& Value::as_tensor() const {
  if (!is_tensor()) wrong_kind(*this, "Tensor");
  return std::get<at::Tensor>(data_);
}
const Global& Value::as_global() const {
  if (!is_global()) wrong_kind(*this, "global");
  return *std::get<std::shared_ptr<const Global>>(data_);
}
const StorageRef& Value::as_storage() const {
  if (!is_storage()) wrong_kind(*this, "storage");
  return *std::get<std::shared_ptr<const StorageRef>>(data_);
}

const Value* Value::get(std::string_view key) const { return is_dict() ? as_dict().find(key) : nullptr; }
const Value* Value::get(std::int64_t key) const { return is_dict() ? as_dict().find(Value::integer(key)) : nullptr; }

std::vector<Value>& Value::mutable_items() {
  if (is_tuple()) return std::get<std::shared_ptr<Tuple>>(data_)->items;
  if (is_list()) return std::get<std::shared_ptr<List>>(data_)->items;
  wrong_kind(*this, "tuple or list");
}
Dict& Value::mutable_dict() {
  if (!is_dict()) wrong_kind(*this, "dict");
  return *std::get<std::shared_ptr<Dict>>(data_);
}

const void* Value::container_id() const {
  switch (kind()) {
    case Kind::Tuple: return std::get<std::shared_ptr<Tuple>>(data_).get();
    case Kind::List: return std::get<std::shared_ptr<List>>(data_).get();
    case Kind::Dict: return std::get<std::shared_ptr<Dict>>(data_).get();
    default: return nullptr;
  }
}

std::optional<std::string> hash_key(const Value& v) {
  std::string out;
  if (!hash_key_into(v, out, 0)) return std::nullopt;
  return out;
}

const Value* Dict::find(const Value& key) const {
  const auto k = hash_key(key);
  if (!k) return nullptr;
  const auto it = index_.find(*k);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Value* Dict::find(std::string_view key) const {
  std::string k = "S" + std::to_string(key.size()) + ':';
  k += key;
  const auto it = index_.find(k);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

bool Dict::set(Value key, Value value) {
  auto k = hash_key(key);
  if (!k) return false;
  const auto [it, inserted] = index_.emplace(std::move(*k), items_.size());
  if (inserted) items_.emplace_back(std::move(key), std::move(value));
  else items_[it->second].second = std::move(value);
  return true;
}

void Dict::clear() {
  items_.clear();
  index_.clear();
  attributes = Value();
}

std::string repr(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return v.as_bool() ? "True" : "False";
    case Value::Kind::Int: return std::to_string(v.as_int());
    case Value::Kind::Float: return format_double(v.as_double());
    case Value::Kind::String: return quote(v.as_string(), false);
    case Value::Kind::Bytes: return quote(v.as_bytes(), true);
    case Value::Kind::Tuple: {
      const auto& items = v.items();
      if (items.size() > 16) return "(<tuple of " + std::to_string(items.size()) + ">)";
      std::string s = "(";
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) s += ", ";
        s += items[i].is_tuple() ? "(...)" : repr(items[i]);
      }
      return s + (items.size() == 1 ? ",)" : ")");
    }
    case Value::Kind::Tensor: return describe_tensor(v.as_tensor());
    case Value::Kind::Global: return v.as_global().qualified();
    default: return std::string("<") + v.type_name() + ">";
  }
}

nlohmann::json to_json(const Value& v, std::size_t max_nodes) {
  std::size_t budget = max_nodes;
  return to_json_rec(v, 0, budget);
}

Value from_json(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(j.get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return Value::integer(static_cast<std::int64_t>(u));
      return Value::real(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float: return Value::real(j.get<double>());
    case nlohmann::json::value_t::string: return Value::string(j.get<std::string>());
    case nlohmann::json::value_t::binary:
      return Value::bytes(std::string(j.get_binary().begin(), j.get_binary().end()));
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Value d = Value::dict();
      for (const auto& [k, e] : j.items()) d.mutable_dict().set(Value::string(k), from_json(e));
      return d;
    }
    case nlohmann::json::value_t::discarded: break;
  }
  fail(kWhat, "cannot convert a discarded JSON value");
}

}  // namespace blip::io::pickle
