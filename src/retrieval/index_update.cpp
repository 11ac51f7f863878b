#include "blip/retrieval/index_update.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <unordered_map>

#include "blip/error.h"

namespace blip::retrieval {

IndexUpdateCounts update_image_index(ImageIndex& index, const std::vector<std::string>& paths,
                                     const std::string& fingerprint, models::BlipRetrievalImpl& model,
                                     const EmbedImagesOptions& options, const std::string& what) {
  if (fingerprint.empty()) fail(what, "empty model fingerprint");
  if (index.size() > 0 && index.fingerprint != fingerprint)
    fail(what, "was built with another model, image size or precision (index fingerprint " + index.fingerprint +
                   ", now " + fingerprint + "): its embeddings cannot be mixed with new ones; write a new index");
  if (index.size() > 0) check_image_index(index, what);

  std::unordered_map<std::string, std::int64_t> old_row;
  for (std::int64_t i = 0; i < index.size(); ++i) old_row.emplace(index.files[static_cast<std::size_t>(i)].path, i);
  const bool old_tokens = index.has_tokens();

  IndexUpdateCounts counts;
  std::vector<IndexedFile> listed;  // files that could be stat'ed, in the order given
  std::vector<std::int64_t> reuse;  // their old row, or -1
  std::vector<std::string> to_embed;
  std::vector<std::int64_t> embed_source;  // to_embed[j] is paths[embed_source[j]]
  for (std::size_t i = 0; i < paths.size(); ++i) {
    IndexedFile f;
    try {
      f = stat_indexed_file(paths[i]);
    } catch (const Error& e) {
      counts.failed.push_back({static_cast<std::int64_t>(i), paths[i], e.what()});
      continue;
    }
    const auto it = old_row.find(f.path);
    std::int64_t row = -1;
    if (it != old_row.end()) {
      const IndexedFile& before = index.files[static_cast<std::size_t>(it->second)];
      if (before.size == f.size && before.mtime_ns == f.mtime_ns && (!options.keep_tokens || old_tokens))
        row = it->second;
    }
    listed.push_back(f);
    reuse.push_back(row);
    if (row < 0) {
      to_embed.push_back(f.path);
      embed_source.push_back(static_cast<std::int64_t>(i));
    }
  }

  const EmbeddedImages fresh = embed_image_files(model, to_embed, options);
  const std::int64_t dim = fresh.embeddings.size(1);
  if (index.size() > 0 && index.embeddings.size(1) != dim)
    fail(what, "has " + std::to_string(index.embeddings.size(1)) + "-d embeddings, the model gives " +
                   std::to_string(dim));

  // Assemble the new index: old rows and fresh rows, in the listed order, failures left out.
  ImageIndex next;
  next.fingerprint = fingerprint;
  std::vector<std::int64_t> from_old, from_fresh, pos_old, pos_fresh;
  std::size_t k = 0;  // position in to_embed
  for (std::size_t i = 0; i < listed.size(); ++i) {
    if (reuse[i] >= 0) {
      pos_old.push_back(static_cast<std::int64_t>(next.files.size()));
      from_old.push_back(reuse[i]);
      next.files.push_back(index.files[static_cast<std::size_t>(reuse[i])]);
      ++counts.kept;
      continue;
    }
    const std::size_t j = k++;
    if (!fresh.ok[j]) continue;
    pos_fresh.push_back(static_cast<std::int64_t>(next.files.size()));
    from_fresh.push_back(static_cast<std::int64_t>(j));
    next.files.push_back(listed[i]);
    ++counts.embedded;
  }
  for (const auto& f : fresh.failed)  // rows of to_embed -> positions in `paths`
    counts.failed.push_back({embed_source[static_cast<std::size_t>(f.row)], f.path, f.reason});
  std::sort(counts.failed.begin(), counts.failed.end(),
            [](const FailedImage& a, const FailedImage& b) { return a.row < b.row; });
  std::unordered_map<std::string, char> now;
  for (const auto& f : next.files) now.emplace(f.path, 1);
  for (const auto& f : index.files) counts.removed += now.count(f.path) ? 0 : 1;

  const auto n = static_cast<std::int64_t>(next.files.size());
  const auto idx = [](const std::vector<std::int64_t>& v) { return at::tensor(v, at::kLong); };
  next.embeddings = at::zeros({n, dim}, at::kFloat);
  if (!pos_old.empty()) next.embeddings.index_copy_(0, idx(pos_old), index.embeddings.index_select(0, idx(from_old)));
  if (!pos_fresh.empty())
    next.embeddings.index_copy_(0, idx(pos_fresh), fresh.embeddings.index_select(0, idx(from_fresh)));
  if (options.keep_tokens && fresh.tokens.defined()) {
    next.tokens = at::zeros({n, fresh.tokens.size(1), fresh.tokens.size(2)}, at::kHalf);
    if (!pos_old.empty()) next.tokens.index_copy_(0, idx(pos_old), index.tokens.index_select(0, idx(from_old)));
    if (!pos_fresh.empty()) next.tokens.index_copy_(0, idx(pos_fresh), fresh.tokens.index_select(0, idx(from_fresh)));
  } else if (options.keep_tokens && old_tokens) {
    next.tokens = index.tokens.index_select(0, idx(from_old));  // nothing new: every row is old
  }
  index = std::move(next);
  return counts;
}

}  // namespace blip::retrieval
