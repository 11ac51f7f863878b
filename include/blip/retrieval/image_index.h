// An index of image files for search (what blip_index writes and blip_search reads): each image's
// normalized ITC embedding, its path and the (size, mtime) it had when embedded, a fingerprint of
// the model and preprocessing that produced the embeddings, and optionally the ViT tokens in half
// precision for the ITM rerank of small collections.
//
// Stored as safetensors (format "blip-image-index", version 1):
//   embeddings    [N, E]      float32   normalize(vision_proj(ViT CLS)), as BLIP's evaluation
//   path_bytes    [B]         uint8     the N paths' UTF-8 bytes, concatenated
//   path_offsets  [N + 1]     int64     path i = path_bytes[offsets[i], offsets[i + 1])
//   file_size     [N]         int64     bytes
//   file_mtime_ns [N]         int64     modification time, ns since the epoch
//   tokens        [N, T, D]   float16   optional: the ViT output
// metadata: format, version, fingerprint, embed_dim. Paths as tensors rather than metadata keep
// the header small for millions of images.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace blip::retrieval {

inline constexpr const char* kImageIndexFormat = "blip-image-index";
inline constexpr int kImageIndexVersion = 1;

// A file as it was when embedded: a changed size or mtime means it must be embedded again.
struct IndexedFile {
  std::string path;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
};

struct ImageIndex {
  std::string fingerprint;          // model_fingerprint() of the model that embedded the images
  std::vector<IndexedFile> files;   // row i of embeddings / tokens is files[i]
  at::Tensor embeddings;            // [N, E] float32 CPU, rows L2-normalized
  at::Tensor tokens;                // [N, T, D] float16 CPU, or undefined

  std::int64_t size() const { return static_cast<std::int64_t>(files.size()); }
  bool has_tokens() const { return tokens.defined(); }
};

// Throws blip::Error when the parts disagree (row counts, dtypes, ranks), naming `what`.
void check_image_index(const ImageIndex& index, const std::string& what);

// Writes atomically (a unique temporary beside `path`, fsync, rename); refuses to replace
// anything but a regular file.
void save_image_index(const std::string& path, const ImageIndex& index);

// Reads and checks an index: every tensor's name, dtype and shape, their count, the format and
// version; errors name the file and the tensor or key.
ImageIndex load_image_index(const std::string& path);

// The file's (size, mtime) now; throws blip::Error naming the path if it cannot be stat'ed.
IndexedFile stat_indexed_file(const std::string& path);

// The paths listed in a text file, one per line ("\r\n" accepted, blank lines skipped), as
// written (relative paths stay relative to the current directory). Non-regular files and files
// over 1 GiB are refused; errors name the file (and the line).
std::vector<std::string> read_image_list(const std::string& list_path);

// The image files under `dir`, recursively, sorted by path (byte order): files whose extension
// (case-insensitive) is one of `extensions`. Symlinked directories are not followed, so a cycle
// cannot hang the walk; unreadable subdirectories throw blip::Error naming them.
std::vector<std::string> list_image_files(const std::string& dir,
                                          const std::vector<std::string>& extensions = {
                                              ".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"});

}  // namespace blip::retrieval
