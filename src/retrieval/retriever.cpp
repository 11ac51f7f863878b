#include "blip/retriever.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <map>

#include "blip/blip_defaults.h"
#include "blip/error.h"
#include "blip/image/resize.h"
#include "blip/image/transform.h"
#include "blip/models/factory.h"
#include "blip/models/state_dict.h"
#include "blip/retrieval/image_embedding.h"
#include "blip/retrieval/index_update.h"
#include "blip/retrieval/itc_features.h"
#include "blip/retrieval/precision.h"
#include "blip/text/pre_caption.h"
#include "retrieval/retriever_impl.h"

namespace blip {
namespace {

Embeddings to_embeddings(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
  Embeddings e;
  e.rows = c.size(0);
  e.dim = c.size(1);
  e.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return e;
}

void check_batch(std::int64_t value, const char* what) {
  if (value < 1) fail(std::string("retriever option ") + what, "must be at least 1, got " + std::to_string(value));
}

}  // namespace

// ---- Impl helpers ----

retrieval::TextTensors Retriever::Impl::tokenize(const std::vector<std::string>& texts, const std::string& what) {
  std::vector<std::string> cleaned;
  cleaned.reserve(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i)
    cleaned.push_back(text::pre_caption(texts[i], kCaptionMaxWords, what + " " + std::to_string(i + 1)));
  return retrieval::tokenize_to_tensors(*tokenizer, cleaned, kTextMaxLength);
}

at::Tensor Retriever::Impl::text_features(const retrieval::TextTensors& tokens) {
  retrieval::ItcTextOptions o;
  o.chunk = options.text_batch;
  o.device = device;
  return retrieval::itc_text_features(*model, tokens.input_ids, tokens.attention_mask, 0, tokens.input_ids.size(0), o);
}

at::Tensor Retriever::Impl::image_tokens_of_files(const std::vector<std::string>& paths) {
  std::vector<at::Tensor> parts;
  const auto n = static_cast<std::int64_t>(paths.size());
  for (std::int64_t a = 0; a < n; a += options.image_batch) {
    const std::vector<std::string> chunk(paths.begin() + a, paths.begin() + std::min(n, a + options.image_batch));
    const at::Tensor pixels = image::load_image_batch(chunk, image_size());
    parts.push_back(retrieval::image_tokens(*model, pixels, device, precision));
  }
  return at::cat(parts, 0);
}

at::Tensor Retriever::Impl::image_features(const at::Tensor& tokens) {
  return retrieval::itc_image_feat(*model, tokens).to(at::kCPU);
}

retrieval::ItmScorer Retriever::Impl::scorer() {
  retrieval::ItmScorerOptions o;
  o.itm_batch = options.itm_batch;
  o.device = device;
  o.precision = precision;
  return retrieval::ItmScorer(*model, o);
}

// ---- Retriever ----

Retriever::Retriever(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Retriever::Retriever(Retriever&&) noexcept = default;
Retriever& Retriever::operator=(Retriever&&) noexcept = default;
Retriever::~Retriever() = default;

Retriever Retriever::load(const std::string& config_path, const RetrieverOptions& options) {
  check_batch(options.image_batch, "image_batch");
  check_batch(options.text_batch, "text_batch");
  check_batch(options.itm_batch, "itm_batch");
  if (options.loader_workers < 0)
    fail("retriever option loader_workers", "must be >= 0, got " + std::to_string(options.loader_workers));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->device = retrieval::parse_device(options.device, "device");
  impl->precision = retrieval::parse_precision(options.precision);
  retrieval::check_precision(impl->precision, impl->device);
  std::map<std::string, std::string> overrides;
  if (!options.checkpoint.empty()) overrides["pretrained"] = options.checkpoint;
  if (!options.vocab.empty()) overrides["tokenizer"] = options.vocab;
  impl->config = load_retrieval_config(config_path, overrides);
  if (impl->config.tokenizer.empty())
    fail(config_path, "no tokenizer: set `tokenizer` in the config or give a vocabulary file");
  if (options.threads > 0) at::set_num_threads(options.threads);
  impl->tokenizer = text::load_tokenizer(impl->config.tokenizer);

  models::LoadOptions load;
  load.strict = options.strict_checkpoint;
  models::LoadReport report;
  impl->model = models::load_blip_retrieval(impl->config, "", load, /*with_momentum=*/false, &report);
  if (!report.complete()) impl->checkpoint_report = report.source + ":\n" + report.describe();
  retrieval::check_vocabulary_fits(*impl->tokenizer,
                                   impl->model->text_encoder->embeddings->word_embeddings->weight.size(0),
                                   config_path);
  // Hash the weights as loaded (float32), before the cast: see model_fingerprint.
  impl->fingerprint = retrieval::model_fingerprint(*impl->model, impl->image_size(), impl->precision);
  impl->model->to(impl->device);
  retrieval::cast_floating_weights(*impl->model, impl->precision);
  impl->model->eval();  // the Retriever owns its model: eval mode for good
  return Retriever(std::move(impl));
}

std::int64_t Retriever::embed_dim() const { return impl_->model->spec().embed_dim; }
int Retriever::image_size() const { return impl_->image_size(); }
std::string Retriever::fingerprint() const { return impl_->fingerprint; }
const RetrieverOptions& Retriever::options() const { return impl_->options; }
std::string Retriever::checkpoint_report() const { return impl_->checkpoint_report; }

Embeddings Retriever::encode_images(const std::vector<std::string>& paths) const {
  return to_embeddings(encode_images_tensor(paths));
}

at::Tensor Retriever::encode_images_tensor(const std::vector<std::string>& paths) const {
  const std::lock_guard<std::mutex> lock(impl_->mutex);
  c10::NoGradGuard no_grad;
  if (paths.empty()) return at::zeros({0, embed_dim()}, at::kFloat);
  return impl_->image_features(impl_->image_tokens_of_files(paths));
}

Embeddings Retriever::encode_decoded_images(const std::vector<image::ImageU8>& images) const {
  std::vector<at::Tensor> pixels;
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (images[i].empty() || images[i].pixels.size() != static_cast<std::size_t>(images[i].width) * images[i].height * 3)
      fail("decoded image " + std::to_string(i + 1), "is empty or its pixel buffer does not match width x height x 3");
    pixels.push_back(image::to_normalized_tensor(image::resize_bicubic(images[i], image_size(), image_size())));
  }
  if (pixels.empty()) return to_embeddings(at::zeros({0, embed_dim()}, at::kFloat));
  return to_embeddings(encode_pixels(at::stack(pixels)));
}

Embeddings Retriever::encode_texts(const std::vector<std::string>& texts) const {
  return to_embeddings(encode_texts_tensor(texts));
}

at::Tensor Retriever::encode_texts_tensor(const std::vector<std::string>& texts) const {
  const std::lock_guard<std::mutex> lock(impl_->mutex);
  c10::NoGradGuard no_grad;
  if (texts.empty()) return at::zeros({0, embed_dim()}, at::kFloat);
  return impl_->text_features(impl_->tokenize(texts, "text"));
}

at::Tensor Retriever::encode_pixels(const at::Tensor& pixels) const {
  const std::lock_guard<std::mutex> lock(impl_->mutex);
  c10::NoGradGuard no_grad;
  const int s = image_size();
  if (pixels.dim() != 4 || pixels.size(1) != 3 || pixels.size(2) != s || pixels.size(3) != s)
    fail("pixels", "must be [B, 3, " + std::to_string(s) + ", " + std::to_string(s) + "] (transform_test's output)");
  std::vector<at::Tensor> parts;
  for (std::int64_t a = 0; a < pixels.size(0); a += impl_->options.image_batch) {
    const at::Tensor chunk = pixels.slice(0, a, std::min(pixels.size(0), a + impl_->options.image_batch));
    parts.push_back(impl_->image_features(retrieval::image_tokens(*impl_->model, chunk, impl_->device, impl_->precision)));
  }
  return parts.empty() ? at::zeros({0, embed_dim()}, at::kFloat) : at::cat(parts, 0);
}

std::vector<Match> Retriever::match(const std::string& image_path, const std::vector<std::string>& texts) const {
  const std::lock_guard<std::mutex> lock(impl_->mutex);
  c10::NoGradGuard no_grad;
  std::vector<Match> out(texts.size());
  if (texts.empty()) return out;
  const at::Tensor tokens = impl_->image_tokens_of_files({image_path});
  const at::Tensor image_feat = impl_->image_features(tokens);
  const retrieval::TextTensors tt = impl_->tokenize(texts, "text");
  const at::Tensor sims = at::matmul(impl_->text_features(tt), image_feat[0]).contiguous();
  const at::Tensor logits =
      impl_->scorer().image_logits(tokens[0], retrieval::ItmTexts(tt, impl_->tokenizer->enc_id())).contiguous();
  const at::Tensor probs = at::softmax(logits, 1).contiguous();
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto r = static_cast<std::int64_t>(i);
    out[i].itc = sims[r].item<float>();
    out[i].itm_logit = logits[r][1].item<float>();
    out[i].itm_probability = probs[r][1].item<float>();
    out[i].score = retrieval::combined_score(out[i].itm_logit, out[i].itc);
  }
  return out;
}

retrieval::ImageIndex Retriever::build_index(const std::vector<std::string>& paths, const IndexBuildOptions& options,
                                             std::vector<SkippedImage>* skipped) const {
  retrieval::ImageIndex index;
  const IndexUpdateReport report = update_index(index, paths, options);
  if (skipped) *skipped = report.skipped;
  return index;
}

IndexUpdateReport Retriever::update_index(retrieval::ImageIndex& index, const std::vector<std::string>& paths,
                                          const IndexBuildOptions& options) const {
  const std::lock_guard<std::mutex> lock(impl_->mutex);
  retrieval::EmbedImagesOptions o;
  o.image_size = image_size();
  o.image_batch = impl_->options.image_batch;
  o.loader_workers = impl_->options.loader_workers;
  o.keep_tokens = options.store_tokens;
  o.device = impl_->device;
  o.precision = impl_->precision;
  o.dist = options.dist;
  if (options.on_progress)
    o.on_progress = [&](std::int64_t done, std::int64_t total) { options.on_progress({done, total}); };
  const retrieval::IndexUpdateCounts counts =
      retrieval::update_image_index(index, paths, impl_->fingerprint, *impl_->model, o);
  IndexUpdateReport report;
  report.kept = counts.kept;
  report.embedded = counts.embedded;
  report.removed = counts.removed;
  for (const auto& f : counts.failed) report.skipped.push_back({f.path, f.reason});
  return report;
}

}  // namespace blip
