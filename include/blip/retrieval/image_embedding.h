// Embedding image files for an index: BLIP's transform_test, the ViT, and the normalized ITC
// projection, batch by batch with images decoded ahead on worker threads. Bad images (missing,
// corrupt, too large) are recorded and skipped, never fatal: indexing a folder should not stop at
// one broken file. Optionally sharded over the ranks of a process group.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace blip::models {
class BlipRetrievalImpl;
}
namespace blip::dist {
class DistContext;
}

namespace blip::retrieval {

// Images per ViT forward while indexing.
inline constexpr std::int64_t kIndexImageBatch = 16;

struct EmbedImagesOptions {
  int image_size = 0;                      // transform_test's size: the config's image_size
  std::int64_t image_batch = kIndexImageBatch;
  int loader_workers = 2;                  // threads decoding images ahead of the ViT
  bool keep_tokens = false;                // also return the ViT tokens (float16)
  c10::Device device = c10::Device(c10::kCPU);  // where the model is
  at::ScalarType precision = at::kFloat;   // the model's floating weight type
  // Called after each batch with (images done, images in total) of this rank's share.
  std::function<void(std::int64_t, std::int64_t)> on_progress;
  // With a process group of several ranks, rank r embeds paths r, r + W, r + 2W, ... and every
  // rank receives all rows (the index is then written by rank 0). nullptr: this process alone.
  const dist::DistContext* dist = nullptr;
};

struct FailedImage {
  std::int64_t row = 0;  // position in the paths given
  std::string path;
  std::string reason;
};

struct EmbeddedImages {
  at::Tensor embeddings;             // [N, E] float32 CPU; rows of failed images are zero
  at::Tensor tokens;                 // [N, T, D] float16 CPU when keep_tokens, else undefined
  std::vector<char> ok;              // ok[i]: image i was embedded
  std::vector<FailedImage> failed;   // in path order
};

// The model must be in eval mode on options.device with weights in options.precision (see
// model_guards.h); runs without autograd.
EmbeddedImages embed_image_files(models::BlipRetrievalImpl& model, const std::vector<std::string>& paths,
                                 const EmbedImagesOptions& options);

// Identifies what makes embeddings comparable: a hash of the model's parameters and buffers
// (names, shapes, values as they are now: call it before a cast to bf16 / fp16) together with
// the image size, the preprocessing and the compute precision. Costs one pass over the weights.
std::string model_fingerprint(const models::BlipRetrievalImpl& model, int image_size, at::ScalarType precision);

}  // namespace blip::retrieval
