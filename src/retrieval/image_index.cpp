#include "blip/retrieval/image_index.h"

#include <ATen/ATen.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include "blip/error.h"
#include "blip/io/safetensors.h"
#include "core/regular_file.h"

namespace blip::retrieval {
namespace {

const char* const kEmbeddings = "embeddings";
const char* const kPathBytes = "path_bytes";
const char* const kPathOffsets = "path_offsets";
const char* const kFileSize = "file_size";
const char* const kFileMtime = "file_mtime_ns";
const char* const kTokens = "tokens";

std::string shape_text(const at::Tensor& t) {
  std::string s = "[";
  for (std::int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

void expect_tensor(const at::Tensor& t, const std::string& what, const char* name, at::ScalarType dtype, int dim,
                   std::int64_t rows) {
  const std::string where = what + ": tensor '" + name + "'";
  if (!t.defined()) fail(where, "missing");
  if (t.scalar_type() != dtype)
    fail(where, std::string("has dtype ") + c10::toString(t.scalar_type()) + ", expected " + c10::toString(dtype));
  if (t.dim() != dim) fail(where, "has shape " + shape_text(t) + ", expected " + std::to_string(dim) + " dimensions");
  if (rows >= 0 && t.size(0) != rows)
    fail(where, "has " + std::to_string(t.size(0)) + " rows for " + std::to_string(rows) + " images");
}

}  // namespace

void check_image_index(const ImageIndex& index, const std::string& what) {
  const std::int64_t n = index.size();
  expect_tensor(index.embeddings, what, kEmbeddings, at::kFloat, 2, n);
  if (index.embeddings.size(1) < 1) fail(what, "embeddings have no columns");
  if (index.tokens.defined()) expect_tensor(index.tokens, what, kTokens, at::kHalf, 3, n);
  if (index.fingerprint.empty()) fail(what, "no model fingerprint");
}

void save_image_index(const std::string& path, const ImageIndex& index) {
  check_image_index(index, path);
  std::string bytes;
  std::vector<std::int64_t> offsets{0}, sizes, mtimes;
  for (const auto& f : index.files) {
    bytes += f.path;
    offsets.push_back(static_cast<std::int64_t>(bytes.size()));
    sizes.push_back(f.size);
    mtimes.push_back(f.mtime_ns);
  }
  const auto i64 = [](std::vector<std::int64_t>& v) {
    return at::from_blob(v.data(), {static_cast<std::int64_t>(v.size())}, at::kLong).clone();
  };
  io::NamedTensors tensors{
      {kEmbeddings, index.embeddings.contiguous()},
      {kPathBytes, at::from_blob(bytes.data(), {static_cast<std::int64_t>(bytes.size())}, at::kByte).clone()},
      {kPathOffsets, i64(offsets)},
      {kFileSize, i64(sizes)},
      {kFileMtime, i64(mtimes)}};
  if (index.tokens.defined()) tensors.emplace_back(kTokens, index.tokens.contiguous());
  io::save_safetensors(path, tensors,
                       {{"format", kImageIndexFormat},
                        {"version", std::to_string(kImageIndexVersion)},
                        {"fingerprint", index.fingerprint},
                        {"embed_dim", std::to_string(index.embeddings.size(1))}});
}

ImageIndex load_image_index(const std::string& path) {
  std::map<std::string, std::string> meta;
  io::NamedTensors tensors = io::load_safetensors(path, &meta);
  const auto format = meta.find("format");
  if (format == meta.end() || format->second != kImageIndexFormat)
    fail(path, "not an image index (no metadata format=blip-image-index): was it written by blip_index?");
  if (meta["version"] != std::to_string(kImageIndexVersion))
    fail(path, "image index version '" + meta["version"] + "', this build reads version " +
                   std::to_string(kImageIndexVersion));
  std::map<std::string, at::Tensor> by_name;
  for (auto& [name, t] : tensors) by_name[name] = t;
  const std::set<std::string> known{kEmbeddings, kPathBytes, kPathOffsets, kFileSize, kFileMtime, kTokens};
  for (const auto& [name, t] : by_name)
    if (!known.count(name)) fail(path, "unexpected tensor '" + name + "' in an image index");

  ImageIndex index;
  index.fingerprint = meta["fingerprint"];
  const at::Tensor offsets = by_name[kPathOffsets];
  expect_tensor(offsets, path, kPathOffsets, at::kLong, 1, -1);
  if (offsets.size(0) < 1) fail(path + ": tensor 'path_offsets'", "is empty (needs N + 1 entries)");
  const std::int64_t n = offsets.size(0) - 1;
  const at::Tensor bytes = by_name[kPathBytes];
  expect_tensor(bytes, path, kPathBytes, at::kByte, 1, -1);
  const at::Tensor sizes = by_name[kFileSize], mtimes = by_name[kFileMtime];
  expect_tensor(sizes, path, kFileSize, at::kLong, 1, n);
  expect_tensor(mtimes, path, kFileMtime, at::kLong, 1, n);
  const auto off = offsets.accessor<std::int64_t, 1>();
  const auto size_of = sizes.accessor<std::int64_t, 1>();
  const auto mtime_of = mtimes.accessor<std::int64_t, 1>();
  const auto* chars = reinterpret_cast<const char*>(bytes.data_ptr<std::uint8_t>());
  if (off[0] != 0 || off[n] != bytes.size(0))
    fail(path + ": tensor 'path_offsets'", "does not span 'path_bytes' (" + std::to_string(bytes.size(0)) + " bytes)");
  // All offsets checked before any path is read: a later bad offset must not make an earlier
  // read run past path_bytes.
  for (std::int64_t i = 0; i < n; ++i)
    if (off[i + 1] < off[i]) fail(path + ": tensor 'path_offsets'", "decreases at entry " + std::to_string(i + 1));
  index.files.resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    auto& f = index.files[static_cast<std::size_t>(i)];
    f.path.assign(chars + off[i], static_cast<std::size_t>(off[i + 1] - off[i]));
    f.size = size_of[i];
    f.mtime_ns = mtime_of[i];
  }
  index.embeddings = by_name[kEmbeddings];
  if (by_name.count(kTokens)) index.tokens = by_name[kTokens];
  check_image_index(index, path);
  const std::string dim = std::to_string(index.embeddings.size(1));
  if (meta["embed_dim"] != dim) fail(path, "metadata embed_dim '" + meta["embed_dim"] + "' but embeddings have " + dim);
  return index;
}

IndexedFile stat_indexed_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path, std::string("cannot stat: ") + std::strerror(errno));
  IndexedFile f;
  f.path = path;
  f.size = static_cast<std::int64_t>(st.st_size);
  f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return f;
}

std::vector<std::string> read_image_list(const std::string& list_path) {
  constexpr std::uint64_t kMaxListBytes = std::uint64_t{1} << 30;
  const std::string text = files::read_regular_file(list_path, kMaxListBytes, "image list");
  std::vector<std::string> paths;
  std::size_t start = 0, line_number = 0;
  while (start < text.size()) {
    ++line_number;
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find('\0') != std::string::npos)
      fail(list_path + ":" + std::to_string(line_number), "NUL byte in a path: is this a text file?");
    if (!line.empty()) paths.push_back(line);
    start = end + 1;
  }
  return paths;
}

std::vector<std::string> list_image_files(const std::string& dir, const std::vector<std::string>& extensions) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, fs::exists(dir, ec) ? "is not a directory" : "no such directory");
  const auto wanted = [&](const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
  };
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) fail(dir, "cannot list: " + ec.message());
  std::string last = dir;  // the entry before a failed step: the unreadable directory or its sibling
  for (; it != end; it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    last = entry.path().string();
    std::error_code type_ec;
    // Regular files and symlinks to them; directories are entered unless they are symlinks.
    if (entry.is_regular_file(type_ec) && wanted(entry.path())) files.push_back(last);
  }
  if (ec) fail(last, "cannot list: " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace blip::retrieval
