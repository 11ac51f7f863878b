// The most a vocabulary file (vocab.txt or a SentencePiece .model) may hold. BERT's vocab.txt is
// 226 KiB and multilingual SentencePiece models are a few MiB; the cap only stops a wrong path
// (a disk image, /dev/zero behind a link) from being read into memory.
#pragma once

#include "core/regular_file.h"

namespace blip::text {

constexpr std::uint64_t kMaxVocabularyBytes = 64 * files::kMiB;

}  // namespace blip::text
