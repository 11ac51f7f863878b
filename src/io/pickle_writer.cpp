// Protocol-2 pickler producing what torch.save writes for state dicts and plain data.
#include "blip/io/pickle.h"

#include "blip/error.h"
#include "core/utf8.h"
#include "io/pickle_opcodes.h"

#include <ATen/ATen.h>

#include <cstring>
#include <limits>
#include <unordered_map>

namespace blip::io::pickle {

namespace {

constexpr std::size_t kMaxDepth = 256;

class Pickler {
 public:
  Pickler(const StorageSaver& save, const std::string& what) : save_(save), what_(what) {}

  std::string run(const Value& v) {
    out_ += static_cast<char>(op::PROTO);
    out_ += '\x02';
    save(v, 0);
    out_ += static_cast<char>(op::STOP);
    return std::move(out_);
  }

 private:
  void opcode(std::uint8_t c) { out_ += static_cast<char>(c); }
  void le(std::uint64_t v, int nbytes) {
    for (int i = 0; i < nbytes; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }

  void save_int(std::int64_t i) {
    if (i >= 0 && i <= 0xff) {
      opcode(op::BININT1);
      le(static_cast<std::uint64_t>(i), 1);
    } else if (i >= 0 && i <= 0xffff) {
      opcode(op::BININT2);
      le(static_cast<std::uint64_t>(i), 2);
    } else if (i >= std::numeric_limits<std::int32_t>::min() && i <= std::numeric_limits<std::int32_t>::max()) {
      opcode(op::BININT);
      le(static_cast<std::uint32_t>(static_cast<std::int32_t>(i)), 4);
    } else {
      // Shortest little-endian two's complement, as Python's encode_long.
      std::string bytes;
      std::uint64_t u = static_cast<std::uint64_t>(i);
      for (int k = 0; k < 8; ++k) bytes += static_cast<char>((u >> (8 * k)) & 0xff);
      const char ext = i < 0 ? '\xff' : '\x00';
      while (bytes.size() > 1 && bytes.back() == ext && ((bytes[bytes.size() - 2] & 0x80) == (ext & 0x80)))
        bytes.pop_back();
      opcode(op::LONG1);
      le(bytes.size(), 1);
      out_ += bytes;
    }
  }

  void save_float(double d) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    opcode(op::BINFLOAT);
    for (int k = 7; k >= 0; --k) out_ += static_cast<char>((bits >> (8 * k)) & 0xff);  // big-endian
  }

  void save_str(const std::string& s) {
    if (s.size() > std::numeric_limits<std::uint32_t>::max()) fail(what_, "string longer than 4 GiB cannot be pickled");
    opcode(op::BINUNICODE);
    le(s.size(), 4);
    out_ += s;
  }

  void save_global(const std::string& module, const std::string& name) {
    opcode(op::GLOBAL);
    out_ += module + "\n" + name + "\n";
  }

  void memoize(const void* id) {
    const std::uint64_t index = memo_.size();
    memo_.emplace(id, index);
    if (index < 256) {
      opcode(op::BINPUT);
      le(index, 1);
    } else {
      opcode(op::LONG_BINPUT);
      le(index, 4);
    }
  }
  bool save_memoized(const void* id) {
    const auto it = memo_.find(id);
    if (it == memo_.end()) return false;
    if (it->second < 256) {
      opcode(op::BINGET);
      le(it->second, 1);
    } else {
      opcode(op::LONG_BINGET);
      le(it->second, 4);
    }
    return true;
  }

  void save_items(const std::vector<Value>& items, std::size_t depth) {
    for (const auto& item : items) save(item, depth + 1);
  }

  void save_tensor(const at::Tensor& tensor) {
    if (save_memoized(tensor.unsafeGetTensorImpl())) return;
    const char* cls = storage_class(tensor.scalar_type());
    if (!cls) fail(what_, std::string("tensors of dtype ") + c10::toString(tensor.scalar_type()) + " cannot be saved");
    const at::Tensor data = tensor.detach().to(at::kCPU).contiguous();
    const std::string key = save_(data);

    save_global("torch._utils", "_rebuild_tensor_v2");
    opcode(op::MARK);
    {  // persistent id ('storage', torch.<T>Storage, key, 'cpu', numel)
      opcode(op::MARK);
      save_str("storage");
      save_global("torch", cls);
      save_str(key);
      save_str("cpu");
      save_int(data.numel());
      opcode(op::TUPLE);
      opcode(op::BINPERSID);
    }
    save_int(0);
    opcode(op::MARK);
    for (const auto s : data.sizes()) save_int(s);
    opcode(op::TUPLE);
    opcode(op::MARK);
    for (const auto s : data.strides()) save_int(s);
    opcode(op::TUPLE);
    opcode(op::NEWFALSE);
    save_global("collections", "OrderedDict");
    opcode(op::EMPTY_TUPLE);
    opcode(op::REDUCE);
    opcode(op::TUPLE);
    opcode(op::REDUCE);
    memoize(tensor.unsafeGetTensorImpl());
  }

  void save(const Value& v, std::size_t depth) {
    if (depth > kMaxDepth) fail(what_, "value nests deeper than 256 levels (or contains a cycle)");
    switch (v.kind()) {
      case Value::Kind::None: opcode(op::NONE); return;
      case Value::Kind::Bool: opcode(v.as_bool() ? op::NEWTRUE : op::NEWFALSE); return;
      case Value::Kind::Int: save_int(v.as_int()); return;
      case Value::Kind::Float: save_float(v.as_double()); return;
      case Value::Kind::String: save_str(v.as_string()); return;
      case Value::Kind::Bytes:
        // Protocol 2 has no bytes opcode: Python writes _codecs.encode(latin-1 text, 'latin1').
        save_global("_codecs", "encode");
        save_str(utf8::from_latin1(v.as_bytes()));
        save_str("latin1");
        opcode(op::TUPLE2);
        opcode(op::REDUCE);
        return;
      case Value::Kind::Tuple: {
        if (save_memoized(v.container_id())) return;
        const auto& items = v.items();
        if (items.empty()) {
          opcode(op::EMPTY_TUPLE);
        } else if (items.size() <= 3) {
          save_items(items, depth);
          opcode(static_cast<std::uint8_t>(op::TUPLE1 + items.size() - 1));
        } else {
          opcode(op::MARK);
          save_items(items, depth);
          opcode(op::TUPLE);
        }
        memoize(v.container_id());
        return;
      }
      case Value::Kind::List: {
        if (save_memoized(v.container_id())) return;
        opcode(op::EMPTY_LIST);
        memoize(v.container_id());
        if (!v.items().empty()) {
          opcode(op::MARK);
          save_items(v.items(), depth);
          opcode(op::APPENDS);
        }
        return;
      }
      case Value::Kind::Dict: {
        if (save_memoized(v.container_id())) return;
        const Dict& d = v.as_dict();
        if (d.ordered) {
          save_global("collections", "OrderedDict");
          opcode(op::EMPTY_TUPLE);
          opcode(op::REDUCE);
        } else {
          opcode(op::EMPTY_DICT);
        }
        memoize(v.container_id());
        if (!d.empty()) {
          opcode(op::MARK);
          for (const auto& [key, value] : d.items()) {
            save(key, depth + 1);
            save(value, depth + 1);
          }
          opcode(op::SETITEMS);
        }
        if (!d.attributes.is_none()) {
          save(d.attributes, depth + 1);
          opcode(op::BUILD);
        }
        return;
      }
      case Value::Kind::Tensor: save_tensor(v.as_tensor()); return;
      case Value::Kind::Global: save_global(v.as_global().module, v.as_global().name); return;
      case Value::Kind::Storage: fail(what_, "a bare storage cannot be pickled (only tensors)");
    }
  }

  const StorageSaver& save_;
  const std::string& what_;
  std::string out_;
  std::unordered_map<const void*, std::uint64_t> memo_;
};

}  // namespace

std::string pickle(const Value& value, const StorageSaver& save_storage, const std::string& what) {
  return Pickler(save_storage, what).run(value);
}

}  // namespace blip::io::pickle
