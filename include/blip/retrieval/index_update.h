// Bringing an image index up to date with a list of files, re-embedding only what changed: a file
// whose path, size and mtime match an indexed row keeps that row; new and changed files are
// embedded; rows of files not in the list are dropped. The result lists files in the order given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blip/retrieval/image_embedding.h"
#include "blip/retrieval/image_index.h"

namespace blip::retrieval {

struct IndexUpdateCounts {
  std::int64_t kept = 0;      // unchanged rows reused
  std::int64_t embedded = 0;  // new or changed files embedded now
  std::int64_t removed = 0;   // indexed files not in the new index (no longer listed, or now failing)
  std::vector<FailedImage> failed;  // listed files that could not be embedded (left out)
};

// `index` may be empty (a new index: its fingerprint is set) or one loaded from disk, whose
// fingerprint must equal `fingerprint` (else blip::Error: the embeddings would not be
// comparable). With options.keep_tokens, rows without tokens are embedded again; without it,
// tokens are dropped. A listed file that cannot be stat'ed counts as failed.
IndexUpdateCounts update_image_index(ImageIndex& index, const std::vector<std::string>& paths,
                                     const std::string& fingerprint, models::BlipRetrievalImpl& model,
                                     const EmbedImagesOptions& options, const std::string& what = "image index");

}  // namespace blip::retrieval
