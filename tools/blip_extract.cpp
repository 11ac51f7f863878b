// blip_extract: BLIP image/text features and ITM logits into a safetensors file.
//   blip_extract --config FILE [--checkpoint FILE] [--vocab FILE] --image FILE...
//                (--caption TEXT... | --captions-file FILE | --captions-json FILE)
//                --out FILE.safetensors [--device cpu|cuda]
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "blip/blas_kernels.h"
#include "blip/config.h"
#include "blip/error.h"
#include "blip/features/feature_extractor.h"
#include "blip/io/safetensors.h"
#include "blip/models/factory.h"
#include "blip/models/state_dict.h"
#include "blip/text/tokenizer.h"
#include "blip/retrieval/precision.h"
#include "cli_common.h"

namespace {

std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

void print_summary(const blip::io::NamedTensors& out, const std::vector<blip::features::Caption>& captions,
                   const std::vector<std::string>& images) {
  for (const auto& [name, t] : out)
    std::printf("  %-15s %-14s %s\n", name.c_str(), shape_of(t).c_str(), c10::toString(t.scalar_type()));
  const at::Tensor* image_feat = nullptr;
  const at::Tensor* text_feat = nullptr;
  const at::Tensor* itm = nullptr;
  for (const auto& [name, t] : out) {
    if (name == "image_feat") image_feat = &t;
    if (name == "text_feat") text_feat = &t;
    if (name == "itm_logits") itm = &t;
  }
  if (!image_feat || !text_feat || !itm) return;
  const auto sims = at::matmul(*image_feat, text_feat->t());
  const auto itm_prob = at::softmax(*itm, -1).select(-1, 1);
  std::printf("\nITC similarity / ITM match probability (image x caption):\n");
  for (size_t i = 0; i < images.size(); ++i) {
    std::printf("  image %zu:", i);
    for (size_t t = 0; t < captions.size(); ++t)
      std::printf("  %+.3f/%.3f", sims[i][t].item<float>(), itm_prob[i][t].item<float>());
    std::printf("   %s\n", images[i].c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);  // first: OpenBLAS reads OPENBLAS_CORETYPE only at load
  CLI::App app{"Extract BLIP retrieval features (ViT tokens, ITC features, ITM logits) to safetensors"};
  std::string config_path, checkpoint, vocab, out_path, captions_file, captions_json;
  std::string device = "cpu";
  std::vector<std::string> images, caption_texts;
  bool non_strict = false;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  blip::features::ExtractOptions options;
  app.add_option("--config", config_path, "retrieval YAML (BLIP's layout)")->required();
  app.add_option("--checkpoint", checkpoint, "checkpoint (.pth or .safetensors); overrides the config's `pretrained`");
  app.add_option("--vocab", vocab, "vocab.txt or SentencePiece .model; overrides the config's `tokenizer`");
  app.add_option("--image", images, "image file (repeatable)");
  auto* cap = app.add_option("--caption", caption_texts, "caption (repeatable)");
  auto* capf = app.add_option("--captions-file", captions_file, "text file, one caption per line");
  auto* capj = app.add_option("--captions-json", captions_json, "JSON array of caption strings");
  cap->excludes(capf)->excludes(capj);
  capf->excludes(capj);
  app.add_option("--out", out_path, "output .safetensors file")->required()->check(blip::cli::non_empty_path());
  app.add_option("--device", device, "cpu or cuda[:n]");
  app.add_option("--threads", threads, "CPU threads for torch (default: all cores)")
      ->transform(blip::cli::int_range(1, blip::cli::kMaxThreads));
  app.add_option("--image-batch", options.image_batch, "images per ViT batch")
      ->transform(blip::cli::int_range(1, blip::cli::kMaxBatch));
  app.add_option("--max-pixels", options.decode.max_pixels,
                 "refuse images with more pixels than this (0: no limit; default: twice PIL's limit)")
      ->transform(blip::cli::int_range(0, std::int64_t{1} << 40));
  app.add_flag("--non-strict", non_strict,
               "load like BLIP's load_checkpoint: drop shape-mismatched keys, report missing ones");
  if (const int code = blip::cli::parse(app, argc, argv, "blip_extract"); code >= 0) return code;

  try {
    at::set_num_threads(threads);
    const c10::Device target = blip::retrieval::parse_device(device, "--device");
    std::map<std::string, std::string> overrides;
    if (!checkpoint.empty()) overrides["pretrained"] = checkpoint;
    if (!vocab.empty()) overrides["tokenizer"] = vocab;
    const auto config = blip::load_retrieval_config(config_path, overrides);
    if (config.tokenizer.empty())
      blip::fail(config_path, "no tokenizer: set `tokenizer` in the config or pass --vocab");

    std::vector<blip::features::Caption> captions;
    for (size_t i = 0; i < caption_texts.size(); ++i)
      captions.push_back({caption_texts[i], "--caption " + std::to_string(i + 1)});
    if (!captions_file.empty()) captions = blip::features::read_captions_file(captions_file);
    if (!captions_json.empty()) captions = blip::features::read_captions_json(captions_json);
    if (images.empty() && captions.empty()) blip::fail("blip_extract", "give at least one --image or caption");

    const auto tokenizer = blip::text::load_tokenizer(config.tokenizer);
    blip::models::LoadOptions load;
    load.strict = !non_strict;
    blip::models::LoadReport report;
    auto model = blip::models::load_blip_retrieval(config, "", load, /*with_momentum=*/false, &report);
    if (!report.complete()) std::fprintf(stderr, "checkpoint %s:\n%s\n", report.source.c_str(), report.describe().c_str());

    model->to(target);  // extract_features computes where the model is
    const auto out = blip::features::extract_features(*model, *tokenizer, images, captions, options);
    nlohmann::json caption_list = nlohmann::json::array();
    for (const auto& c : captions) caption_list.push_back(c.text);
    blip::io::save_safetensors(out_path, out,
                               {{"config", config.source},
                                {"checkpoint", report.source},
                                {"images", nlohmann::json(images).dump()},
                                {"captions", caption_list.dump()}});
    std::printf("wrote %s (%zu tensors, %zu images, %zu captions)\n", out_path.c_str(), out.size(),
                images.size(), captions.size());
    print_summary(out, captions, images);
    return 0;
  } catch (...) {
    return blip::cli::report_exception("blip_extract", "lower --image-batch or image_size");
  }
}
