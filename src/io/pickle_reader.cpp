// The restricted unpickler: a stack machine over the opcodes torch.save emits, with an allow-list
// of globals that only rebuild data (never run code).
#include "blip/io/pickle.h"

#include "blip/error.h"
#include "core/utf8.h"
#include "io/pickle_opcodes.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>

namespace blip::io::pickle {

namespace {

constexpr int kHighestProtocol = 5;
constexpr std::size_t kMaxTensorDims = 64;
constexpr std::size_t kMaxLineBytes = 1024;  // GLOBAL module / name lines
// Dict keys are hashed in full, and a key built from memoized parts can be far larger than the
// pickle (up to 1 MiB each, pickle_value.cpp), so their total is bounded: 16 bytes per pickle byte
// plus 4 MiB. A BLIP state dict's keys total ~60 KB; a 357-byte fuzzer input with a 64 MiB base
// spent over a second hashing.
constexpr std::size_t kHashBudgetPerByte = 16;
constexpr std::size_t kHashBudgetBase = std::size_t{1} << 22;

struct StorageClass {
  const char* name;
  at::ScalarType dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"FloatStorage", at::kFloat},   {"DoubleStorage", at::kDouble}, {"HalfStorage", at::kHalf},
    {"BFloat16Storage", at::kBFloat16}, {"LongStorage", at::kLong}, {"IntStorage", at::kInt},
    {"ShortStorage", at::kShort},   {"CharStorage", at::kChar},     {"ByteStorage", at::kByte},
    {"BoolStorage", at::kBool},
};

// The callables a checkpoint pickle may name. Everything else is refused at the GLOBAL opcode.
enum class Callable { OrderedDict, RebuildTensorV2, RebuildParameter, RebuildParameterWithState, Device,
                      CodecsEncode, StorageType };

std::optional<Callable> allowed_global(const std::string& module, const std::string& name) {
  if (module == "collections" && name == "OrderedDict") return Callable::OrderedDict;
  if (module == "torch._utils") {
    if (name == "_rebuild_tensor_v2") return Callable::RebuildTensorV2;
    if (name == "_rebuild_parameter") return Callable::RebuildParameter;
    if (name == "_rebuild_parameter_with_state") return Callable::RebuildParameterWithState;
  }
  if (module == "torch") {
    if (name == "device") return Callable::Device;
    if (storage_dtype(name)) return Callable::StorageType;
  }
  if (module == "_codecs" && name == "encode") return Callable::CodecsEncode;
  return std::nullopt;
}

std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

class Unpickler {
 public:
  Unpickler(const std::uint8_t* data, std::size_t size, const std::string& what, const StorageLoader& loader,
            const UnpickleOptions& options)
      : data_(data), size_(size), what_(what), loader_(loader), options_(options),
        hash_budget_(kHashBudgetPerByte * size + kHashBudgetBase) {}

  ~Unpickler() { release_containers(); }

  Value run() {
    while (true) {
      if (pos_ >= size_) error_here("the pickle ends without a STOP opcode");
      op_pos_ = pos_;
      op_ = data_[pos_++];
      if (op_ == op::STOP) break;
      step();
    }
    if (!marks_.empty()) error_here("STOP with an unclosed MARK");
    if (stack_.size() != 1)
      error_here("STOP with " + std::to_string(stack_.size()) + " values on the stack (expected 1)");
    Value result = stack_.back();
    check_graph(result);
    return result;
  }

 private:
  // --- errors ---------------------------------------------------------------------------------
  [[noreturn]] void error_here(const std::string& reason) const {
    std::string where = "pickle byte " + std::to_string(op_pos_);
    if (const char* n = op::name(op_)) where += std::string(" (") + n + ")";
    fail(what_, where + ": " + reason);
  }

  // --- input ----------------------------------------------------------------------------------
  const std::uint8_t* take(std::uint64_t n, const char* what) {
    if (n > size_ - pos_)
      error_here(std::string(what) + " needs " + std::to_string(n) + " bytes but only " +
                 std::to_string(size_ - pos_) + " remain");
    const std::uint8_t* p = data_ + pos_;
    pos_ += static_cast<std::size_t>(n);
    return p;
  }
  std::uint64_t read_le(int nbytes, const char* what) {
    const std::uint8_t* p = take(nbytes, what);
    std::uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::string read_line(const char* what) {
    const std::size_t limit = std::min(size_ - pos_, kMaxLineBytes + 1);
    const void* nl = std::memchr(data_ + pos_, '\n', limit);
    if (!nl) error_here(std::string(what) + " is not a newline-terminated line of at most 1024 bytes");
    const auto* end = static_cast<const std::uint8_t*>(nl);
    std::string line(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(end - (data_ + pos_)));
    pos_ = static_cast<std::size_t>(end - data_) + 1;
    return line;
  }
  std::string read_string(std::uint64_t n, const char* what) {
    const std::uint8_t* p = take(n, what);
    return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
  }

  // --- stack ----------------------------------------------------------------------------------
  std::size_t frame_base() const { return marks_.empty() ? 0 : marks_.back(); }
  Value pop() {
    if (stack_.size() <= frame_base()) error_here("stack underflow");
    Value v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  Value& top() {
    if (stack_.size() <= frame_base()) error_here("stack underflow");
    return stack_.back();
  }
  std::vector<Value> pop_mark() {
    if (marks_.empty()) error_here("no MARK on the stack");
    const std::size_t base = marks_.back();
    marks_.pop_back();
    std::vector<Value> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(base)),
                             std::make_move_iterator(stack_.end()));
    stack_.resize(base);
    return items;
  }
  void push(Value v) { stack_.push_back(std::move(v)); }

  // Every container is remembered so that, whatever happens, its contents can be dropped one
  // level at a time: reference cycles cannot leak and deep chains cannot overflow the stack.
  Value track(Value v) {
    containers_.push_back(v);
    return v;
  }
  void release_containers() {
    for (auto& c : containers_) {
      if (kept_.count(c.container_id())) continue;
      if (c.is_dict()) c.mutable_dict().clear();
      else c.mutable_items().clear();
    }
    containers_.clear();
  }

  void dict_set(Dict& d, Value key, Value value) {
    const auto k = hash_key(key);
    if (!k) error_here(std::string("dict key of type ") + key.type_name() + " is not hashable (or too large)");
    if (k->size() > hash_budget_) error_here("dict keys exceed the hashing budget");
    hash_budget_ -= k->size();
    d.set(std::move(key), std::move(value));
  }

  Value& memo_get(std::uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) error_here("memo index " + std::to_string(index) + " was never stored");
    return it->second;
  }

  // --- one opcode -----------------------------------------------------------------------------
  void step() {
    switch (op_) {
      case op::PROTO: {
        const auto v = read_le(1, "protocol number");
        if (v > kHighestProtocol) error_here("unsupported pickle protocol " + std::to_string(v));
        break;
      }
      case op::FRAME: {
        const auto n = read_le(8, "frame length");
        if (n > size_ - pos_) error_here("frame of " + std::to_string(n) + " bytes runs past the end");
        break;
      }
      case op::MARK: marks_.push_back(stack_.size()); break;
      case op::POP:
        // Like Python: popping an empty frame discards the MARK that opened it.
        if (stack_.size() <= frame_base() && !marks_.empty()) pop_mark();
        else pop();
        break;
      case op::POP_MARK: pop_mark(); break;
      case op::DUP: push(top()); break;

      case op::NONE: push(Value::none()); break;
      case op::NEWTRUE: push(Value::boolean(true)); break;
      case op::NEWFALSE: push(Value::boolean(false)); break;
      case op::BININT1: push(Value::integer(static_cast<std::int64_t>(read_le(1, "BININT1")))); break;
      case op::BININT2: push(Value::integer(static_cast<std::int64_t>(read_le(2, "BININT2")))); break;
      case op::BININT:
        push(Value::integer(static_cast<std::int32_t>(static_cast<std::uint32_t>(read_le(4, "BININT")))));
        break;
      case op::LONG1: push(read_long(read_le(1, "LONG1 length"))); break;
      case op::LONG4: {
        const auto n = static_cast<std::int32_t>(static_cast<std::uint32_t>(read_le(4, "LONG4 length")));
        if (n < 0) error_here("negative LONG4 length");
        push(read_long(static_cast<std::uint64_t>(n)));
        break;
      }
      case op::BINFLOAT: {
        const std::uint8_t* p = take(8, "BINFLOAT");
        std::uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
        double d;
        std::memcpy(&d, &bits, sizeof d);
        push(Value::real(d));
        break;
      }

      case op::SHORT_BINUNICODE: push(Value::string(read_string(read_le(1, "string length"), "string"))); break;
      case op::BINUNICODE: push(Value::string(read_string(read_le(4, "string length"), "string"))); break;
      case op::BINUNICODE8: push(Value::string(read_string(read_le(8, "string length"), "string"))); break;
      case op::SHORT_BINBYTES: push(Value::bytes(read_string(read_le(1, "bytes length"), "bytes"))); break;
      case op::BINBYTES: push(Value::bytes(read_string(read_le(4, "bytes length"), "bytes"))); break;
      case op::BINBYTES8: push(Value::bytes(read_string(read_le(8, "bytes length"), "bytes"))); break;

      case op::EMPTY_TUPLE: push(track(Value::tuple({}))); break;
      case op::TUPLE1:
      case op::TUPLE2:
      case op::TUPLE3: {
        const std::size_t n = op_ - op::TUPLE1 + 1;
        if (stack_.size() < frame_base() + n) error_here("stack underflow");
        std::vector<Value> items(std::make_move_iterator(stack_.end() - static_cast<std::ptrdiff_t>(n)),
                                 std::make_move_iterator(stack_.end()));
        stack_.resize(stack_.size() - n);
        push(track(Value::tuple(std::move(items))));
        break;
      }
      case op::TUPLE: push(track(Value::tuple(pop_mark()))); break;
      case op::EMPTY_LIST: push(track(Value::list({}))); break;
      case op::LIST: push(track(Value::list(pop_mark()))); break;
      case op::APPEND: {
        Value item = pop();
        list_target().push_back(std::move(item));
        break;
      }
      case op::APPENDS: {
        auto items = pop_mark();
        auto& list = list_target();
        for (auto& item : items) list.push_back(std::move(item));
        break;
      }
      case op::EMPTY_DICT: push(track(Value::dict())); break;
      case op::DICT: {
        auto items = pop_mark();
        if (items.size() % 2) error_here("odd number of items for a dict");
        Value d = track(Value::dict());
        for (std::size_t i = 0; i < items.size(); i += 2)
          dict_set(d.mutable_dict(), std::move(items[i]), std::move(items[i + 1]));
        push(std::move(d));
        break;
      }
      case op::SETITEM: {
        Value value = pop();
        Value key = pop();
        dict_set(dict_target(), std::move(key), std::move(value));
        break;
      }
      case op::SETITEMS: {
        auto items = pop_mark();
        if (items.size() % 2) error_here("odd number of items for SETITEMS");
        Dict& d = dict_target();
        for (std::size_t i = 0; i < items.size(); i += 2) dict_set(d, std::move(items[i]), std::move(items[i + 1]));
        break;
      }

      case op::BINPUT: memo_[read_le(1, "memo index")] = top(); break;
      case op::LONG_BINPUT: memo_[read_le(4, "memo index")] = top(); break;
      case op::MEMOIZE: {
        const std::uint64_t index = memo_.size();
        memo_[index] = top();
        break;
      }
      case op::BINGET: push(memo_get(read_le(1, "memo index"))); break;
      case op::LONG_BINGET: push(memo_get(read_le(4, "memo index"))); break;

      case op::GLOBAL: {
        std::string module = read_line("GLOBAL module");
        std::string name = read_line("GLOBAL name");
        push(make_global(std::move(module), std::move(name)));
        break;
      }
      case op::STACK_GLOBAL: {
        Value name = pop();
        Value module = pop();
        if (!name.is_string() || !module.is_string()) error_here("STACK_GLOBAL needs two strings");
        push(make_global(module.as_string(), name.as_string()));
        break;
      }
      case op::REDUCE: {
        Value args = pop();
        Value callable = pop();
        push(call(callable, args));
        break;
      }
      case op::NEWOBJ: {
        Value args = pop();
        Value cls = pop();
        if (!cls.is_global() || allowed_global(cls.as_global().module, cls.as_global().name) != Callable::OrderedDict)
          error_here("NEWOBJ is only supported for collections.OrderedDict, got " + repr(cls));
        push(call(cls, args));
        break;
      }
      case op::BUILD: {
        Value state = pop();
        build(top(), state);
        break;
      }
      case op::BINPERSID: {
        Value pid = pop();
        push(persistent_load(pid));
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op_);
        const char* n = op::name(op_);
        error_here(std::string("opcode ") + (n ? n : "(unknown)") + " (" + hex + ") is not supported");
      }
    }
  }

  std::vector<Value>& list_target() {
    Value& t = top();
    if (!t.is_list()) error_here(std::string("cannot append to a ") + t.type_name());
    return t.mutable_items();
  }
  Dict& dict_target() {
    Value& t = top();
    if (!t.is_dict()) error_here(std::string("cannot set items on a ") + t.type_name());
    return t.mutable_dict();
  }

  Value read_long(std::uint64_t n) {
    const std::uint8_t* p = take(n, "long integer");
    if (n == 0) return Value::integer(0);
    // Drop redundant sign-extension bytes, then require the value to fit in 64 bits.
    const std::uint8_t ext = (p[n - 1] & 0x80) ? 0xff : 0x00;
    std::uint64_t len = n;
    while (len > 1 && p[len - 1] == ext && ((p[len - 2] & 0x80) == (ext & 0x80))) --len;
    if (len > 8) error_here("integer of " + std::to_string(n) + " bytes does not fit in 64 bits");
    std::uint64_t v = ext ? ~std::uint64_t{0} : 0;
    for (std::uint64_t i = len; i-- > 0;) v = (v << 8) | p[i];
    return Value::integer(static_cast<std::int64_t>(v));
  }

  Value make_global(std::string module, std::string name) {
    if (!allowed_global(module, name))
      error_here("global '" + printable(module) + "." + printable(name) +
                 "' is not allowed (a checkpoint may only reference tensor rebuilders, torch storage "
                 "types and collections.OrderedDict)");
    return Value::global(std::move(module), std::move(name));
  }

  // --- REDUCE of an allowed global -------------------------------------------------------------
  Value call(const Value& callable, const Value& args) {
    if (!callable.is_global()) error_here(std::string("cannot call a ") + callable.type_name());
    if (!args.is_tuple()) error_here(std::string("arguments must be a tuple, got ") + args.type_name());
    const Global& g = callable.as_global();
    const auto& a = args.items();
    switch (*allowed_global(g.module, g.name)) {
      case Callable::OrderedDict:
        if (!a.empty()) error_here("collections.OrderedDict is only rebuilt from ()");
        return track(Value::dict(/*ordered=*/true));
      case Callable::RebuildTensorV2: return rebuild_tensor(a);
      case Callable::RebuildParameter:
      case Callable::RebuildParameterWithState:
        if (a.size() < 3 || !a[0].is_tensor()) error_here(g.qualified() + " expects (tensor, requires_grad, hooks, ...)");
        return a[0];
      case Callable::Device: {
        if (a.empty() || a.size() > 2 || !a[0].is_string() || (a.size() == 2 && !a[1].is_int()))
          error_here("torch.device expects (type[, index])");
        std::string s = a[0].as_string();
        if (a.size() == 2) s += ":" + std::to_string(a[1].as_int());
        return Value::string(s);
      }
      case Callable::CodecsEncode: {
        if (a.size() != 2 || !a[0].is_string() || !a[1].is_string() ||
            (a[1].as_string() != "latin1" && a[1].as_string() != "latin-1"))
          error_here("_codecs.encode is only accepted as encode(str, 'latin1')");
        auto bytes = utf8::to_latin1(a[0].as_string());
        if (!bytes) error_here("_codecs.encode argument is not latin-1 text");
        return Value::bytes(std::move(*bytes));
      }
      case Callable::StorageType: break;
    }
    error_here("global '" + g.qualified() + "' cannot be called");
  }

  void build(Value& obj, const Value& state) {
    if (!obj.is_dict()) error_here(std::string("BUILD is only supported on dicts, got ") + obj.type_name());
    const Value* attrs = &state;
    // (state, slotstate) pairs: only the instance dict part may carry anything.
    if (state.is_tuple()) {
      if (state.items().size() != 2 || !state.items()[1].is_none())
        error_here("BUILD state tuple must be (dict, None)");
      attrs = &state.items()[0];
    }
    if (attrs->is_none()) return;
    if (!attrs->is_dict()) error_here(std::string("BUILD state must be a dict, got ") + attrs->type_name());
    Dict& d = obj.mutable_dict();
    if (d.attributes.is_none()) d.attributes = track(Value::dict());
    for (const auto& [k, v] : attrs->as_dict().items()) {
      if (!k.is_string()) error_here("BUILD attribute names must be strings");
      dict_set(d.attributes.mutable_dict(), k, v);
    }
  }

  // --- tensors --------------------------------------------------------------------------------
  Value persistent_load(const Value& pid) {
    if (!pid.is_tuple() || pid.items().size() != 5)
      error_here("persistent id must be ('storage', type, key, location, numel)");
    const auto& t = pid.items();
    if (!t[0].is_string() || t[0].as_string() != "storage") error_here("persistent id is not a 'storage' record");
    if (!t[1].is_global()) error_here("persistent id storage type is not a global");
    const auto dtype = storage_dtype(t[1].as_global().name);
    if (t[1].as_global().module != "torch" || !dtype)
      error_here("persistent id names '" + t[1].as_global().qualified() + "', not a storage type");
    if (!t[2].is_string()) error_here("storage key is not a string");
    if (!t[3].is_string()) error_here("storage location is not a string");
    if (!t[4].is_int() || t[4].as_int() < 0) error_here("storage size is not a non-negative int");
    const std::string& key = t[2].as_string();
    if (key.empty() || key.find('\0') != std::string::npos || key.find('/') != std::string::npos)
      error_here("storage key '" + printable(key) + "' is not a plain record name");
    const std::int64_t numel = t[4].as_int();

    if (const auto it = storages_.find(key); it != storages_.end()) {
      const StorageRef& s = it->second.as_storage();
      if (s.dtype != *dtype || s.numel != numel)
        error_here("storage '" + printable(key) + "' is referenced with two different types or sizes");
      return it->second;
    }
    const std::uint64_t elem = c10::elementSize(*dtype);
    std::uint64_t nbytes = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel), elem, &nbytes))
      error_here("storage '" + printable(key) + "' size overflows");
    at::Storage storage;
    try {
      storage = loader_(key, *dtype, numel);
    } catch (const c10::Error& e) {
      error_here("loading storage '" + printable(key) + "': " + e.what_without_backtrace());
    }
    if (static_cast<std::uint64_t>(storage.nbytes()) < nbytes)
      error_here("storage '" + printable(key) + "' holds " + std::to_string(storage.nbytes()) +
                 " bytes but the pickle declares " + std::to_string(nbytes));
    Value v = Value::storage(StorageRef{storage, *dtype, numel});
    storages_.emplace(key, v);
    return v;
  }

  std::vector<std::int64_t> int_tuple(const Value& v, const char* what) {
    if (!v.is_tuple()) error_here(std::string(what) + " must be a tuple of ints");
    if (v.items().size() > kMaxTensorDims) error_here(std::string(what) + " has more than 64 dimensions");
    std::vector<std::int64_t> out;
    for (const auto& e : v.items()) {
      if (!e.is_int() || e.as_int() < 0) error_here(std::string(what) + " must hold non-negative ints");
      out.push_back(e.as_int());
    }
    return out;
  }

  Value rebuild_tensor(const std::vector<Value>& a) {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (a.size() != 6 && a.size() != 7) error_here("_rebuild_tensor_v2 expects 6 or 7 arguments");
    if (!a[0].is_storage()) error_here("_rebuild_tensor_v2 argument 0 is not a storage");
    if (!a[1].is_int() || a[1].as_int() < 0) error_here("tensor storage offset must be a non-negative int");
    if (!a[4].is_bool()) error_here("tensor requires_grad must be a bool");
    const StorageRef& s = a[0].as_storage();
    const std::int64_t offset = a[1].as_int();
    const auto sizes = int_tuple(a[2], "tensor size");
    const auto strides = int_tuple(a[3], "tensor stride");
    if (sizes.size() != strides.size()) error_here("tensor size and stride differ in length");

    // The furthest element the view reaches must lie inside the storage.
    std::uint64_t numel = 1, last = static_cast<std::uint64_t>(offset);
    bool overflow = false;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      std::uint64_t span = 0;
      overflow |= __builtin_mul_overflow(numel, static_cast<std::uint64_t>(sizes[i]), &numel);
      if (sizes[i] > 0) {
        overflow |= __builtin_mul_overflow(static_cast<std::uint64_t>(sizes[i] - 1),
                                           static_cast<std::uint64_t>(strides[i]), &span);
        overflow |= __builtin_add_overflow(last, span, &last);
      }
    }
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (overflow || numel > kMax || last > kMax) error_here("tensor extent overflows");
    const auto storage_numel = static_cast<std::uint64_t>(s.numel);
    if (numel > 0 ? last >= storage_numel : static_cast<std::uint64_t>(offset) > storage_numel)
      error_here("tensor view (offset " + std::to_string(offset) + ", reaching element " + std::to_string(last) +
                 ") exceeds its storage of " + std::to_string(storage_numel) + " elements");
    try {
      at::Tensor t = at::empty({0}, at::TensorOptions().dtype(s.dtype));
      t.set_(s.storage, offset, sizes, strides);
      return Value::tensor(std::move(t));
    } catch (const c10::Error& e) {
      error_here(std::string("cannot rebuild tensor: ") + e.what_without_backtrace());
    }
  }

  // --- final structure check ---------------------------------------------------------------------
  static std::size_t child_count(const Value& v) {
    if (v.is_tuple() || v.is_list()) return v.items().size();
    if (v.is_dict()) return 2 * v.as_dict().size() + 1;
    return 0;
  }
  static const Value& child(const Value& v, std::size_t i) {
    if (!v.is_dict()) return v.items()[i];
    const auto& d = v.as_dict();
    if (i == 2 * d.size()) return d.attributes;
    return i % 2 ? d.items()[i / 2].second : d.items()[i / 2].first;
  }

  // Rejects reference cycles and nesting deeper than max_depth (iteratively: the graph is
  // untrusted; shared containers are measured once, by their height), and marks what the
  // result keeps.
  void check_graph(const Value& root) {
    struct Frame {
      const Value* v;
      std::size_t next;
      std::size_t height;  // tallest child so far
    };
    if (!root.container_id()) return;
    std::unordered_map<const void*, std::size_t> heights;
    std::unordered_set<const void*> on_path{root.container_id()};
    std::vector<Frame> path{{&root, 0, 0}};
    while (!path.empty()) {
      Frame& f = path.back();
      if (f.next == child_count(*f.v)) {
        const std::size_t h = f.height + 1;
        if (h > options_.max_depth) depth_error();
        on_path.erase(f.v->container_id());
        heights.emplace(f.v->container_id(), h);
        path.pop_back();
        if (!path.empty()) path.back().height = std::max(path.back().height, h);
        continue;
      }
      const Value& c = child(*f.v, f.next++);
      const void* id = c.container_id();
      if (!id) continue;
      if (const auto it = heights.find(id); it != heights.end()) {
        f.height = std::max(f.height, it->second);
        continue;
      }
      if (on_path.count(id)) fail(what_, "pickle contains a reference cycle");
      if (path.size() >= options_.max_depth) depth_error();
      on_path.insert(id);
      path.push_back({&c, 0, 0});
    }
    for (const auto& [id, h] : heights) kept_.insert(id);
  }
  [[noreturn]] void depth_error() const {
    fail(what_, "pickle nests containers deeper than " + std::to_string(options_.max_depth) + " levels");
  }

  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0, op_pos_ = 0;
  std::uint8_t op_ = 0;
  const std::string& what_;
  const StorageLoader& loader_;
  UnpickleOptions options_;
  std::size_t hash_budget_;
  std::vector<Value> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, Value> memo_;
  std::unordered_map<std::string, Value> storages_;
  std::vector<Value> containers_;
  std::unordered_set<const void*> kept_;
};

}  // namespace

std::optional<at::ScalarType> storage_dtype(const std::string& class_name) {
  for (const auto& c : kStorageClasses)
    if (class_name == c.name) return c.dtype;
  return std::nullopt;
}

const char* storage_class(at::ScalarType dtype) {
  for (const auto& c : kStorageClasses)
    if (dtype == c.dtype) return c.name;
  return nullptr;
}

Value unpickle(const std::uint8_t* data, std::size_t size, const std::string& what,
               const StorageLoader& load_storage, const UnpickleOptions& options) {
  Unpickler u(data, size, what, load_storage, options);
  return u.run();
}

}  // namespace blip::io::pickle
