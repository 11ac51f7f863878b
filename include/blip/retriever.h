// blip::Retriever: BLIP image-text retrieval for applications, behind one small header.
//
//   blip::Retriever r = blip::Retriever::load("model_retrieval_coco.yaml");   // config + checkpoint
//   blip::Embeddings images = r.encode_images({"a.jpg", "b.jpg"});          // ITC, normalized
//   blip::Embeddings texts = r.encode_texts({"a dog on a beach"});
//   auto matches = r.match("a.jpg", {"a dog on a beach", "a red car"});   // ITM + combined score
//   blip::retrieval::ImageIndex index = r.build_index(paths);            // or load_image_index()
//   auto hits = r.search("a dog on a beach", index, /*k=*/10, /*rerank=*/20);
//
// The simple path takes and returns standard types (paths, strings, std::vector<float>); the
// tensor overloads (declared with at::Tensor forward-declared: include <ATen/ATen.h> to call them)
// are for applications that already hold tensors.
//
// Scores are BLIP's: ITC similarity = image_feat . text_feat of the normalized projections; ITM =
// itm_head(text_encoder(text, image tokens))[:, 1] (the raw "match" logit) and its softmax
// probability; the combined score = itm logit + itc, by which BLIP's evaluation ranks.
//
// Device and precision: RetrieverOptions::device ("cpu", "cuda", "cuda:1") and precision
// ("fp32", "bf16"; "fp16" on CUDA only). The model is loaded there once and never changed by a
// call. ITC embeddings are always float32.
//
// Threads: a Retriever may be shared between threads; its calls are serialized by an internal
// mutex (each call already uses `threads` CPU threads). For parallel throughput, load one
// Retriever per thread or process. Batching: images go through the ViT image_batch at a time,
// texts through the text encoder text_batch at a time, ITM pairs itm_batch at a time.
//
// Errors: blip::Error (blip/error.h) naming the file, caption or setting and the reason.
#pragma once

#include "blip/blip_defaults.h"
#include "blip/image/image_u8.h"
#include "blip/retrieval/image_index.h"
#include "blip/retrieval/search_results.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}
namespace blip::dist {
class DistContext;
}
namespace blip::retrieval {
class FaissIndex;
}

namespace blip {

struct RetrieverOptions {
  std::string checkpoint;       // overrides the config's `pretrained` ("" = the config's)
  std::string vocab;            // overrides the config's `tokenizer` ("" = the config's)
  std::string device = "cpu";
  std::string precision = "fp32";
  int threads = 0;              // torch's CPU threads; 0 = leave as they are
  std::int64_t image_batch = 16;
  std::int64_t text_batch = kEvalTextChunk;
  std::int64_t itm_batch = 128;
  int loader_workers = 2;       // threads decoding images ahead of the ViT
  bool strict_checkpoint = true;  // false: load like BLIP's load_checkpoint (drop mismatches)
};

// Row-major float32 matrix: rows embeddings of `dim` values each.
struct Embeddings {
  std::int64_t rows = 0;
  std::int64_t dim = 0;
  std::vector<float> values;  // rows * dim
  const float* row(std::int64_t i) const { return values.data() + i * dim; }
};

// One (image, text) pair scored by BLIP's heads.
struct Match {
  float itc = 0.0f;              // ITC similarity
  float itm_logit = 0.0f;        // itm_logit[1]
  float itm_probability = 0.0f;  // softmax(itm_logit)[1]
  float score = 0.0f;            // itm_logit + itc, BLIP's ranking score
};

// Progress of build_index / update_index: images done of total, and the failures so far.
struct IndexProgress {
  std::int64_t done = 0;
  std::int64_t total = 0;
};

// Images that could not be embedded (missing, corrupt, too large): reported, never fatal.
struct SkippedImage {
  std::string path;
  std::string reason;
};

struct IndexBuildOptions {
  bool store_tokens = false;  // keep the ViT tokens (float16) for the rerank
  std::function<void(const IndexProgress&)> on_progress;
  // Several ranks (torchrun): each embeds its share, every rank receives the whole index.
  const dist::DistContext* dist = nullptr;
};

struct SearchOptions {
  std::int64_t k = 10;       // results per query
  std::int64_t rerank = 0;   // candidates rescored by the ITM head (0: ITC only)
  // Candidates from an approximate FAISS index of the same embeddings instead of exact search.
  const retrieval::FaissIndex* approximate = nullptr;
};

struct IndexUpdateReport {
  std::int64_t kept = 0;      // unchanged files whose rows were reused
  std::int64_t embedded = 0;  // new or changed files embedded now
  std::int64_t removed = 0;   // indexed files no longer in the index (not listed, or now failing)
  std::vector<SkippedImage> skipped;
};

class Retriever {
 public:
  // Loads the retrieval config (BLIP's YAML layout), the tokenizer and the checkpoint.
  static Retriever load(const std::string& config_path, const RetrieverOptions& options = {});

  Retriever(Retriever&&) noexcept;
  Retriever& operator=(Retriever&&) noexcept;
  ~Retriever();

  std::int64_t embed_dim() const;
  int image_size() const;
  // Identifies the model weights, image size, preprocessing and precision: embeddings of two
  // Retrievers with equal fingerprints are interchangeable.
  std::string fingerprint() const;
  const RetrieverOptions& options() const;
  // What a non-strict load dropped or left missing ("" when the checkpoint matched exactly).
  std::string checkpoint_report() const;

  // Normalized ITC embeddings [paths.size(), embed_dim]; throws naming the first bad image.
  Embeddings encode_images(const std::vector<std::string>& paths) const;
  // The same for images already decoded to 8-bit RGB (e.g. from a camera, or a cv::Mat through
  // blip/retriever_opencv.h): BLIP's bicubic resize and normalization, then the ViT.
  Embeddings encode_decoded_images(const std::vector<image::ImageU8>& images) const;
  // Normalized ITC embeddings [texts.size(), embed_dim] of pre_caption(text, 30) tokenized to 35.
  Embeddings encode_texts(const std::vector<std::string>& texts) const;

  // One image against texts: ITC, ITM and BLIP's combined score per text, in order.
  std::vector<Match> match(const std::string& image_path, const std::vector<std::string>& texts) const;

  // Embeds `paths` into a new index (bad images go to `skipped`, never fatal).
  retrieval::ImageIndex build_index(const std::vector<std::string>& paths, const IndexBuildOptions& options = {},
                                    std::vector<SkippedImage>* skipped = nullptr) const;
  // Brings `index` up to date with `paths`: unchanged files (same size and mtime) keep their
  // rows, new and changed files are embedded, others are dropped. Throws blip::Error when the
  // index was built with another fingerprint.
  IndexUpdateReport update_index(retrieval::ImageIndex& index, const std::vector<std::string>& paths,
                                 const IndexBuildOptions& options = {}) const;

  // Text -> the k images of `index` most similar by ITC; with rerank > 0 the top `rerank`
  // candidates are rescored by the ITM head and ranked by itm + itc above the rest (tokens from
  // the index, or recomputed from the image files when it has none).
  retrieval::QueryResults search(const std::string& text, const retrieval::ImageIndex& index, std::int64_t k,
                                 std::int64_t rerank = 0) const;
  // Many text queries at once (their embeddings computed in batches).
  std::vector<retrieval::QueryResults> search(const std::vector<std::string>& texts,
                                              const retrieval::ImageIndex& index, const SearchOptions& options) const;
  // Image -> the k captions most similar by ITC, with the same rerank.
  retrieval::QueryResults search_captions(const std::string& image_path, const std::vector<std::string>& captions,
                                          std::int64_t k, std::int64_t rerank = 0) const;
  std::vector<retrieval::QueryResults> search_captions(const std::vector<std::string>& image_paths,
                                                       const std::vector<std::string>& captions,
                                                       const SearchOptions& options) const;
  // Image -> the k most similar images of `index` by ITC features (no ITM: it scores text).
  retrieval::QueryResults search_similar_images(const std::string& image_path, const retrieval::ImageIndex& index,
                                                std::int64_t k) const;
  std::vector<retrieval::QueryResults> search_similar_images(const std::vector<std::string>& image_paths,
                                                             const retrieval::ImageIndex& index,
                                                             const SearchOptions& options) const;

  // Tensor overloads. pixels [B, 3, S, S] float32 preprocessed as BLIP's transform_test
  // (blip/image/transform.h): normalized ITC embeddings [B, E] float32 CPU.
  at::Tensor encode_pixels(const at::Tensor& pixels) const;
  at::Tensor encode_images_tensor(const std::vector<std::string>& paths) const;
  at::Tensor encode_texts_tensor(const std::vector<std::string>& texts) const;

 private:
  struct Impl;
  explicit Retriever(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace blip
