#include "blip/features/feature_extractor.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include "blip/error.h"
#include "blip/image/transform.h"
#include "blip/models/blip_retrieval.h"
#include "blip/retrieval/text_tensors.h"
#include "blip/text/pre_caption.h"
#include "blip/text/tokenizer.h"

namespace blip::features {
namespace {

at::Device parse_device(const std::string& name) {
  try {
    at::Device device(name);
    if (device.is_cuda() && !torch::cuda::is_available())
      fail("--device " + name, "CUDA is not available in this build or on this machine");
    if (!device.is_cpu() && !device.is_cuda()) fail("--device " + name, "use cpu or cuda[:n]");
    return device;
  } catch (const c10::Error&) {
    fail("--device " + name, "not a device name (use cpu or cuda[:n])");
  }
}

// Runs fn over [0, n) in chunks of `batch` and concatenates the results along dim 0.
template <typename Fn>
at::Tensor in_batches(int64_t n, int64_t batch, Fn fn) {
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < n; start += batch) parts.push_back(fn(start, std::min(n, start + batch)));
  return at::cat(parts, 0);
}

}  // namespace

io::NamedTensors extract_features(models::BlipRetrievalImpl& model, const text::Tokenizer& tokenizer,
                                  const std::vector<std::string>& image_paths,
                                  const std::vector<Caption>& captions, const ExtractOptions& options) {
  if (image_paths.empty() && captions.empty()) fail("blip_extract", "no images and no captions given");
  if (options.image_batch < 1 || options.text_batch < 1)
    fail("extract options", "image_batch and text_batch must be positive");
  const at::Device device = parse_device(options.device);
  model.to(device);
  model.eval();
  at::NoGradGuard no_grad;
  io::NamedTensors out;

  at::Tensor image_embeds;
  if (!image_paths.empty()) {
    const auto image_size = static_cast<int>(model.spec().vit.image_size);
    const auto pixels = image::load_image_batch(image_paths, image_size, options.decode);
    image_embeds = in_batches(pixels.size(0), options.image_batch, [&](int64_t a, int64_t b) {
      return model.image_embeds(pixels.slice(0, a, b).to(device));
    });
    out.emplace_back("pixel_values", pixels);
    out.emplace_back("image_embeds", image_embeds.cpu());
    out.emplace_back("image_feat", model.image_feat(image_embeds).cpu());
  }

  if (!captions.empty()) {
    std::vector<std::string> texts;
    texts.reserve(captions.size());
    for (const auto& c : captions) texts.push_back(text::pre_caption(c.text, options.max_words, c.source));
    const retrieval::TextTensors tokens = retrieval::tokenize_to_tensors(tokenizer, texts, options.max_length);
    const at::Tensor& ids = tokens.input_ids;
    const at::Tensor& mask = tokens.attention_mask;
    const auto text_embeds = in_batches(ids.size(0), options.text_batch, [&](int64_t a, int64_t b) {
      return model.text_embeds(ids.slice(0, a, b).to(device), mask.slice(0, a, b).to(device));
    });
    out.emplace_back("input_ids", ids);
    out.emplace_back("attention_mask", mask);
    out.emplace_back("text_embeds", text_embeds.cpu());
    out.emplace_back("text_feat", model.text_feat(text_embeds).cpu());

    if (image_embeds.defined()) {
      // ITM: [ENC] replaces [CLS]; each image's cross-attention K/V are computed once for all texts.
      const auto ids_enc = models::BlipRetrievalImpl::with_enc_token(ids, tokenizer.enc_id()).to(device);
      const auto mask_d = mask.to(device);
      std::vector<at::Tensor> rows;
      for (int64_t i = 0; i < image_embeds.size(0); ++i) {
        const auto kv = model.cross_attention_kv(image_embeds.slice(0, i, i + 1));
        rows.push_back(in_batches(ids.size(0), options.text_batch, [&](int64_t a, int64_t b) {
          return model.itm_logits(ids_enc.slice(0, a, b), mask_d.slice(0, a, b), kv);
        }));
      }
      out.emplace_back("itm_logits", at::stack(rows, 0).cpu());
    }
  }
  return out;
}

}  // namespace blip::features
