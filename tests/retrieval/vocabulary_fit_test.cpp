// A tokenizer whose ids run past the text encoder's word embeddings is refused up front, naming
// the file, instead of failing (or, on a GPU, asserting on the device) inside a forward.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "blip/retrieval/text_tensors.h"
#include "blip/text/tokenizer.h"
#include "common/expect_error.h"
#include "common/fixtures.h"

namespace {

TEST(VocabularyFit, TokenizerLargerThanTheEmbeddingTableIsRefused) {
  const std::string path = blip::test::temp_dir() + "/vocab.txt";
  {
    std::ofstream out(path);
    for (const char* token : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e"}) out << token << "\n";
  }
  const auto tokenizer = blip::text::load_tokenizer(path);
  const int64_t n = tokenizer->vocab_size();
  ASSERT_GE(n, 10);  // the ten lines, plus the [DEC] and [ENC] BLIP adds when they are missing
  blip::retrieval::check_vocabulary_fits(*tokenizer, n, "vocab.txt");      // fits exactly
  blip::retrieval::check_vocabulary_fits(*tokenizer, n + 5, "vocab.txt");  // room to spare
  blip::test::expect_error([&] { blip::retrieval::check_vocabulary_fits(*tokenizer, n - 1, "my_config.yaml"); },
                           {"my_config.yaml", "the tokenizer has " + std::to_string(n) + " tokens",
                            "vocab_size (med_config) is " + std::to_string(n - 1)});
}

}  // namespace
