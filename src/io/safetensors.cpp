#include "blip/io/safetensors.h"

#include "blip/error.h"
#include "io/file_io.h"
#include "io/mapped_file.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_set>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors stores little-endian bytes; this code copies them as they are");

namespace blip::io {

namespace {

using Json = nlohmann::json;
constexpr const char* kMetadataKey = "__metadata__";
// The format itself has no limits on these; ours stop hostile headers from building absurd
// shapes or deep JSON trees (nlohmann's destructor recurses).
constexpr std::size_t kMaxJsonDepth = 32;
constexpr std::size_t kMaxDims = 64;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  std::uint64_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4},   {"F16", at::kHalf, 2}, {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},     {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* dtype_by_type(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype = nullptr;
  std::vector<int64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

std::uint64_t read_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Rejects JSON nested deeper than kMaxJsonDepth before nlohmann builds it.
void check_json_depth(const char* text, std::size_t n, const std::string& what) {
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth)
        fail(what, "safetensors header nests JSON deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
}

std::uint64_t as_u64(const Json& v, const std::string& what, const std::string& context) {
  if (!v.is_number_unsigned()) fail(what, context + " must be a non-negative integer, got " + v.dump());
  return v.get<std::uint64_t>();
}

Entry parse_entry(const std::string& name, const Json& info, const std::string& what) {
  const std::string ctx = "tensor '" + name + "'";
  if (!info.is_object()) fail(what, ctx + ": header entry must be a JSON object");
  Entry e;
  e.name = name;

  const auto dt = info.find("dtype");
  if (dt == info.end() || !dt->is_string()) fail(what, ctx + ": missing string field 'dtype'");
  e.dtype = dtype_by_name(dt->get<std::string>());
  if (!e.dtype) fail(what, ctx + ": unsupported dtype '" + dt->get<std::string>() + "'");

  const auto sh = info.find("shape");
  if (sh == info.end() || !sh->is_array()) fail(what, ctx + ": missing array field 'shape'");
  if (sh->size() > kMaxDims)
    fail(what, ctx + ": shape has " + std::to_string(sh->size()) + " dimensions (limit " +
                   std::to_string(kMaxDims) + ")");
  // numel, and the product of max(dim,1) that torch uses for strides, must both fit in int64.
  std::uint64_t numel = 1, stride_span = 1;
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<int64_t>::max());
  for (const auto& d : *sh) {
    const std::uint64_t dim = as_u64(d, what, ctx + ": shape entry");
    if (dim > kMax) fail(what, ctx + ": shape entry " + std::to_string(dim) + " is too large");
    if (__builtin_mul_overflow(numel, dim, &numel) || numel > kMax ||
        __builtin_mul_overflow(stride_span, std::max<std::uint64_t>(dim, 1), &stride_span) ||
        stride_span > kMax)
      fail(what, ctx + ": shape " + sh->dump() + " overflows the element count");
    e.shape.push_back(static_cast<int64_t>(dim));
  }
  std::uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, e.dtype->size, &nbytes))
    fail(what, ctx + ": shape " + sh->dump() + " overflows the byte size");

  const auto off = info.find("data_offsets");
  if (off == info.end() || !off->is_array() || off->size() != 2)
    fail(what, ctx + ": 'data_offsets' must be an array [begin, end]");
  e.begin = as_u64((*off)[0], what, ctx + ": data_offsets begin");
  e.end = as_u64((*off)[1], what, ctx + ": data_offsets end");
  if (e.end < e.begin)
    fail(what, ctx + ": data_offsets end " + std::to_string(e.end) + " is before begin " + std::to_string(e.begin));
  if (e.end - e.begin != nbytes)
    fail(what, ctx + ": data_offsets span " + std::to_string(e.end - e.begin) + " bytes but shape " +
                   sh->dump() + " of " + e.dtype->name + " needs " + std::to_string(nbytes));
  return e;
}

// Parses and validates the JSON header against a data buffer of `data_size` bytes. Returns the
// entries in data order.
std::vector<Entry> parse_header(const char* text, std::size_t n, std::uint64_t data_size,
                                const std::string& what, std::map<std::string, std::string>* metadata) {
  if (n == 0 || text[0] != '{') fail(what, "safetensors header is not a JSON object (does not start with '{')");
  check_json_depth(text, n, what);

  std::unordered_set<std::string> seen;
  const Json::parser_callback_t reject_duplicates = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second)
      fail(what, "safetensors header lists '" + parsed.get<std::string>() + "' twice");
    return true;
  };
  Json header;
  try {
    header = Json::parse(text, text + n, reject_duplicates);
  } catch (const Json::exception& e) {
    fail(what, std::string("safetensors header is not valid UTF-8 JSON: ") + e.what());
  }
  if (!header.is_object()) fail(what, "safetensors header is not a JSON object");

  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) fail(what, "safetensors __metadata__ must be an object of strings");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(what, "safetensors __metadata__ value of '" + mk + "' is not a string");
        if (metadata) (*metadata)[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(key, value, what));
  }

  // The byte ranges must tile the data buffer exactly: no gaps, no overlaps, nothing left over.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expected = 0;
  for (const auto& e : entries) {
    if (e.begin < expected)
      fail(what, "tensor '" + e.name + "' data_offsets [" + std::to_string(e.begin) + ", " +
                     std::to_string(e.end) + ") overlap the previous tensor, which ends at " +
                     std::to_string(expected));
    if (e.begin > expected)
      fail(what, "tensor '" + e.name + "' starts at " + std::to_string(e.begin) +
                     ", leaving a gap after byte " + std::to_string(expected));
    expected = e.end;
  }
  if (expected != data_size)
    fail(what, "tensor data covers " + std::to_string(expected) + " bytes but the file holds " +
                   std::to_string(data_size) + " data bytes after the header");
  return entries;
}

at::Tensor empty_for(const Entry& e, const std::string& what) {
  try {
    return at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type));
  } catch (const c10::Error& err) {
    fail(what, "tensor '" + e.name + "': cannot allocate: " + err.what_without_backtrace());
  }
}

void check_bool_bytes(const Entry& e, const at::Tensor& t, const std::string& what) {
  if (e.dtype->type != at::kBool) return;
  const auto* p = static_cast<const std::uint8_t*>(t.data_ptr());
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (p[i] > 1)
      fail(what, "BOOL tensor '" + e.name + "' holds byte value " + std::to_string(p[i]) + " (must be 0 or 1)");
}

struct Prelude {
  std::uint64_t header_len;
  std::uint64_t data_size;
};

Prelude check_prelude(std::uint64_t file_size, const std::uint8_t* first8, const std::string& what) {
  if (file_size < 8)
    fail(what, "file is too small (" + std::to_string(file_size) + " bytes) to be safetensors");
  const std::uint64_t n = read_le64(first8);
  if (n > kSafetensorsMaxHeaderBytes)
    fail(what, "safetensors header length " + std::to_string(n) + " exceeds the limit of " +
                   std::to_string(kSafetensorsMaxHeaderBytes) + " bytes");
  if (n > file_size - 8)
    fail(what, "safetensors header length " + std::to_string(n) + " runs past the end of the file (" +
                   std::to_string(file_size) + " bytes)");
  return {n, file_size - 8 - n};
}

using Sink = std::function<void(const void*, std::size_t)>;

void write_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                       const std::string& what, const Sink& sink) {
  struct Item {
    const std::string* name;
    const DtypeInfo* dtype;
    at::Tensor tensor;
  };
  std::vector<Item> items;
  items.reserve(tensors.size());
  std::unordered_set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) fail(what, "'__metadata__' cannot be used as a tensor name");
    if (!names.insert(name).second) fail(what, "tensor name '" + name + "' appears twice");
    if (!tensor.defined()) fail(what, "tensor '" + name + "' is undefined");
    const DtypeInfo* dtype = dtype_by_type(tensor.scalar_type());
    if (!dtype)
      fail(what, "tensor '" + name + "' has dtype " + std::string(c10::toString(tensor.scalar_type())) +
                     ", which safetensors cannot store");
    items.push_back({&name, dtype, tensor});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.dtype->size != b.dtype->size ? a.dtype->size > b.dtype->size : *a.name < *b.name;
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::uint64_t offset = 0;
  for (const auto& item : items) {
    const std::uint64_t nbytes = static_cast<std::uint64_t>(item.tensor.numel()) * item.dtype->size;
    header[*item.name] = {{"dtype", item.dtype->name},
                          {"shape", item.tensor.sizes().vec()},
                          {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail(what, std::string("cannot encode the header (names and metadata must be UTF-8): ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
  sink(len, 8);
  sink(text.data(), text.size());
  for (const auto& item : items) {
    const at::Tensor t = item.tensor.to(at::kCPU).contiguous();
    sink(t.data_ptr(), static_cast<std::size_t>(t.numel()) * item.dtype->size);
  }
}

}  // namespace

NamedTensors parse_safetensors(const std::uint8_t* data, std::size_t size, const std::string& what,
                               std::map<std::string, std::string>* metadata) {
  const Prelude p = check_prelude(size, data, what);
  const auto entries =
      parse_header(reinterpret_cast<const char*>(data + 8), p.header_len, p.data_size, what, metadata);
  const std::uint8_t* buffer = data + 8 + p.header_len;
  NamedTensors out;
  out.reserve(entries.size());
  for (const auto& e : entries) {
    at::Tensor t = empty_for(e, what);
    if (e.end > e.begin) std::memcpy(t.data_ptr(), buffer + e.begin, e.end - e.begin);
    check_bool_bytes(e, t, what);
    out.emplace_back(e.name, std::move(t));
  }
  return out;
}

NamedTensors load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  const detail::InputFile file(path);
  std::uint8_t first8[8] = {};
  if (file.size() >= 8) file.read_at(0, first8, 8, "safetensors header length");
  const Prelude p = check_prelude(file.size(), first8, path);
  std::string text(p.header_len, '\0');
  file.read_at(8, text.data(), text.size(), "safetensors header");
  const auto entries = parse_header(text.data(), text.size(), p.data_size, path, metadata);
  const std::uint64_t base = 8 + p.header_len;
  // Tensors aligned for their elements (all of them, as the format's writers lay them out) point
  // into a private mapping of the file instead of being copied.
  const auto map = detail::MappedFile::map(file);
  NamedTensors out;
  out.reserve(entries.size());
  for (const auto& e : entries) {
    const std::uint64_t offset = base + e.begin, nbytes = e.end - e.begin;
    if (map && nbytes > 0 && offset % c10::elementSize(e.dtype->type) == 0) {
      c10::Storage storage(c10::Storage::use_byte_size_t(), nbytes, detail::MappedFile::data_ptr(map, offset), nullptr, false);
      at::Tensor t = at::empty({0}, at::TensorOptions().dtype(e.dtype->type)).set_(storage, 0, e.shape);
      check_bool_bytes(e, t, path);
      out.emplace_back(e.name, std::move(t));
      continue;
    }
    at::Tensor t = empty_for(e, path);
    if (nbytes > 0) file.read_at(offset, t.data_ptr(), nbytes, "tensor data");
    check_bool_bytes(e, t, path);
    out.emplace_back(e.name, std::move(t));
  }
  return out;
}

std::string serialize_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                                  const std::string& what) {
  std::string out;
  write_safetensors(tensors, metadata, what,
                    [&](const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); });
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  detail::AtomicFileWriter file(path);
  write_safetensors(tensors, metadata, path, [&](const void* p, std::size_t n) { file.write(p, n); });
  file.commit();
}

}  // namespace blip::io
