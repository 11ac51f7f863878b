#include "blip/features/feature_extractor.h"

#include <ATen/ATen.h>

#include "blip/error.h"
#include "blip/image/transform.h"
#include "blip/models/blip_retrieval.h"
#include "blip/retrieval/itc_features.h"
#include "blip/retrieval/itm_scorer.h"
#include "blip/retrieval/model_guards.h"
#include "blip/retrieval/precision.h"
#include "blip/retrieval/text_tensors.h"
#include "blip/text/pre_caption.h"
#include "blip/text/tokenizer.h"

namespace blip::features {
namespace {

// The device to run on: the model's. A requested device that differs is an error rather than a
// move, so that the caller's model is never changed behind its back.
at::Device model_device(models::BlipRetrievalImpl& model, const std::string& requested) {
  const at::Device device = retrieval::module_device(model);
  if (requested.empty()) return device;
  const at::Device wanted = retrieval::parse_device(requested);
  // "cuda" (no index) means the current CUDA device, which is where a CUDA model is taken to be.
  const bool same = wanted.type() == device.type() && (!wanted.has_index() || wanted.index() == device.index());
  if (!same)
    fail("device " + requested, "the model is on " + device.str() +
                                    "; move it there first (extract_features does not move the caller's model)");
  return device;
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
  retrieval::check_vocabulary_fits(tokenizer, model.text_encoder->embeddings->word_embeddings->weight.size(0),
                                   "feature extraction");
  const at::Device device = model_device(model, options.device);
  const retrieval::ScopedEvalMode eval_mode(model);
  at::NoGradGuard no_grad;
  io::NamedTensors out;

  at::Tensor image_embeds;
  if (!image_paths.empty()) {
    const auto image_size = static_cast<int>(model.spec().vit.image_size);
    const auto pixels = image::load_image_batch(image_paths, image_size, options.decode);
    image_embeds = in_batches(pixels.size(0), options.image_batch, [&](int64_t a, int64_t b) {
      return retrieval::image_tokens(model, pixels.slice(0, a, b), device, pixels.scalar_type());
    });
    out.emplace_back("pixel_values", pixels);
    out.emplace_back("image_embeds", image_embeds.cpu());
    out.emplace_back("image_feat", retrieval::itc_image_feat(model, image_embeds).cpu());
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
    out.emplace_back("text_feat", retrieval::itc_text_feat(model, text_embeds).cpu());

    if (image_embeds.defined()) {
      // Every (image, caption) pair at full width, captions in order, text_batch per forward;
      // each image's cross-attention K/V are computed once for all captions.
      retrieval::ItmScorerOptions so;
      so.itm_batch = options.text_batch;
      so.trim_padding = false;
      so.device = device;
      so.precision = image_embeds.scalar_type();
      const retrieval::ItmScorer scorer(model, so);
      const retrieval::ItmTexts itm_texts(tokens, tokenizer.enc_id());
      std::vector<at::Tensor> rows;
      for (int64_t i = 0; i < image_embeds.size(0); ++i) rows.push_back(scorer.image_logits(image_embeds[i], itm_texts));
      out.emplace_back("itm_logits", at::stack(rows, 0));
    }
  }
  return out;
}

}  // namespace blip::features
