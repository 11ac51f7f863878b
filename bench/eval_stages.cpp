// Where the time of BLIP's retrieval evaluation goes, operator by operator: the ViT on a batch of
// images, the text encoder on a chunk of captions (as evaluation() pads them, and trimmed to
// their longest), and the ITM rerank of one image against many captions through ItmScorer (the
// path blip_eval, blip_extract and blip_search use). For each stage: its wall time, then every
// group of operators (each Linear shape, attention products, softmax, LayerNorm, GELU, ...) with
// its share, and for the matrix products the achieved GFLOP/s against a 2048^2 GEMM measured in
// the same run. Full-size architecture, random weights, synthetic captions; no files needed.
//
//   bench_eval_stages [--images 8] [--texts 320] [--itm-batch 256] [--itm-min-tokens 1024]
//                     [--threads N] [--config ...]
//
// Correctness check (non-zero exit when it fails): the trimmed text encoder and the scorer's
// logits agree with the padded, unshared forward within 1e-4.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <numeric>
#include <thread>

#include "blip/blas_kernels.h"
#include "blip/config.h"
#include "blip/models/blip_retrieval.h"
#include "blip/models/factory.h"
#include "blip/models/fused_attention.h"
#include "blip/retrieval/itc_features.h"
#include "blip/retrieval/itm_scorer.h"
#include "blip/retrieval/text_tensors.h"
#include "blip/text/wordpiece_tokenizer.h"
#include "gemm_reference.h"
#include "op_profile.h"
#include "synthetic_retrieval.h"

namespace {

constexpr double kTolerance = 1e-4;

struct Args {
  std::int64_t images = 8, texts = 320, itm_batch = blip::retrieval::kDefaultItmBatch,
               itm_min_tokens = blip::retrieval::kDefaultItmMinBatchTokens;
  std::string config = std::string(BLIP_SOURCE_DIR) + "/configs/retrieval_coco.yaml";
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::string> stages{"vit", "text", "itm"};
  bool run(const std::string& stage) const { return std::find(stages.begin(), stages.end(), stage) != stages.end(); }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs `stage` once to warm up, then once under an OpProfile, and prints the breakdown.
void profile_stage(const std::string& title, double gemm_gflops, const std::function<void()>& stage) {
  stage();
  blip::bench::OpProfile profile;
  const auto t0 = std::chrono::steady_clock::now();
  stage();
  const double wall = seconds_since(t0);
  profile.stop();

  std::vector<std::pair<std::string, blip::bench::OpGroup>> groups(profile.groups().begin(), profile.groups().end());
  std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double flops = 0;
  for (const auto& [name, g] : groups) flops += g.flops;
  std::printf("\n%s: %.3f s, %.1f GFLOP in matrix products, %.1f GF/s overall (%.0f%% of GEMM)\n", title.c_str(),
              wall, flops / 1e9, flops / wall / 1e9, 100.0 * flops / wall / 1e9 / gemm_gflops);
  std::printf("  %-36s %7s %9s %7s %9s %8s %7s\n", "operators", "calls", "s", "share", "GFLOP", "GF/s", "% GEMM");
  for (const auto& [name, g] : groups) {
    if (g.seconds < 1e-3 * wall) continue;
    std::printf("  %-36s %7lld %9.3f %6.1f%%", name.c_str(), static_cast<long long>(g.calls), g.seconds,
                100.0 * g.seconds / wall);
    if (g.flops > 0)
      std::printf(" %9.1f %8.1f %6.0f%%\n", g.flops / 1e9, g.flops / g.seconds / 1e9,
                  100.0 * g.flops / g.seconds / 1e9 / gemm_gflops);
    else
      std::printf("\n");
  }
  const double untraced = wall - profile.traced_seconds();
  std::printf("  %-36s %7s %9.3f %6.1f%%\n", "(between operators)", "", untraced, 100.0 * untraced / wall);
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);  // first: OpenBLAS reads OPENBLAS_CORETYPE only at load
  Args args;
  CLI::App app{"Operator breakdown of BLIP's retrieval evaluation stages (full-size model, random weights)"};
  app.add_option("--images", args.images, "images in the ViT batch")->check(CLI::Range(1, 256));
  app.add_option("--texts", args.texts, "captions (text encoder chunk = min(texts, 256); ITM: one image x texts)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--itm-batch", args.itm_batch, "texts per ITM forward")->check(CLI::Range(1, 100000));
  app.add_option("--itm-min-tokens", args.itm_min_tokens, "token rows at which an ITM batch may end early")
      ->check(CLI::Range(0, 10000000));
  app.add_option("--config", args.config, "retrieval YAML giving the architecture")->check(CLI::ExistingFile);
  app.add_option("--threads", args.threads)->check(CLI::Range(1, 1024));
  app.add_option("--stages", args.stages, "which stages to profile")
      ->delimiter(',')
      ->check(CLI::IsMember({"vit", "text", "itm"}));
  CLI11_PARSE(app, argc, argv);

  try {
    at::set_num_threads(args.threads);
    at::manual_seed(0);
    c10::NoGradGuard no_grad;
    const auto gemm = blip::bench::measure_gemm(2048, at::kFloat);
    const auto core = blip::blas_kernels().core;
    std::printf("threads %d, OpenBLAS core %s, fused attention kernel %s on %d threads; 2048^2 fp32 GEMM in this run: "
                "%.1f GFLOP/s\n",
                args.threads, core.empty() ? "(no OpenBLAS)" : core.c_str(), blip::models::fused_attention_kernel(),
                blip::models::fused_attention_threads(), gemm.gflops);

    const auto config = blip::load_retrieval_config(args.config);
    auto model = blip::models::make_blip_retrieval(config, /*with_momentum=*/false);
    model->eval();
    const blip::text::WordPieceTokenizer tokenizer(blip::bench::synthetic_vocab(), "synthetic vocab");
    const auto split = blip::bench::synthetic_split(1, args.texts, 0);
    const auto tokens = blip::retrieval::tokenize_to_tensors(tokenizer, split.text);
    const std::int64_t chunk = std::min<std::int64_t>(args.texts, 256);
    const double mean_tokens = tokens.attention_mask.sum().item<double>() / static_cast<double>(args.texts);
    std::printf("%lld captions, %.1f tokens on average (padded to %lld)\n", static_cast<long long>(args.texts),
                mean_tokens, static_cast<long long>(tokens.input_ids.size(1)));

    const at::Tensor images = at::randn({args.images, 3, config.image_size, config.image_size});
    at::Tensor image_tokens;
    if (args.run("vit"))
      profile_stage("image encoder (ViT), " + std::to_string(args.images) + " images", gemm.gflops,
                    [&] { image_tokens = model->image_embeds(images); });
    else
      image_tokens = model->image_embeds(images.narrow(0, 0, 1));

    const at::Tensor ids = tokens.input_ids.narrow(0, 0, chunk), mask = tokens.attention_mask.narrow(0, 0, chunk);
    double text_diff = 0;
    if (args.run("text")) {
      // The library's ITC text pass (retrieval::itc_text_features), as evaluation() pads and trimmed.
      blip::retrieval::ItcTextOptions padded, trimmed;
      padded.chunk = trimmed.chunk = chunk;
      padded.trim_padding = false;
      padded.first_token_only = false;
      at::Tensor padded_feat, trimmed_feat;
      profile_stage("text encoder (ITC), " + std::to_string(chunk) + " captions padded to 35 (evaluation())",
                    gemm.gflops,
                    [&] { padded_feat = blip::retrieval::itc_text_features(*model, ids, mask, 0, chunk, padded); });
      profile_stage("text encoder (ITC), the same captions shortest first, each chunk trimmed", gemm.gflops,
                    [&] { trimmed_feat = blip::retrieval::itc_text_features(*model, ids, mask, 0, chunk, trimmed); });
      text_diff = (trimmed_feat - padded_feat).abs().max().item<double>();
    }
    blip::retrieval::ItmScorerOptions so;
    so.itm_batch = args.itm_batch;
    so.min_batch_tokens = args.itm_min_tokens;
    const blip::retrieval::ItmScorer scorer(*model, so);
    const blip::retrieval::ItmTexts texts(tokens, tokenizer.enc_id());
    const at::Tensor one_image = image_tokens.narrow(0, 0, 1);
    at::Tensor logits;
    if (args.run("itm")) profile_stage("ITM rerank, 1 image x " + std::to_string(args.texts) + " captions (ItmScorer, " +
                      std::to_string(args.itm_batch) + " per forward at most, min " +
                      std::to_string(args.itm_min_tokens) + " token rows)",
                  gemm.gflops, [&] { logits = scorer.image_logits(one_image, texts); });
    // Reference: BLIP's call for the first few pairs (padded, the image repeated, no sharing).
    const std::int64_t check = std::min<std::int64_t>(args.texts, 8);
    at::Tensor ref;
    {
      const blip::models::UnfusedAttention blips_operators;  // ATen's attention, as BLIP
      ref = model->itm_logits(texts.ids().narrow(0, 0, check), texts.attention_mask().narrow(0, 0, check),
                              one_image.expand({check, -1, -1}).contiguous(),
                              at::ones({check, one_image.size(1)}, at::kLong));
    }
    const double itm_diff = logits.defined() ? (logits.narrow(0, 0, check) - ref).abs().max().item<double>() : 0.0;

    std::printf("\ncheck (tolerance %.0e):", kTolerance);
    if (args.run("text")) std::printf(" ITC text features trimmed vs padded max |diff| %.2e;", text_diff);
    if (logits.defined()) std::printf(" ITM logits vs BLIP's call %.2e;", itm_diff);
    std::printf("\n");
    if (!(text_diff <= kTolerance && itm_diff <= kTolerance)) {
      std::fprintf(stderr, "bench_eval_stages: FAILED: results differ beyond %.0e\n", kTolerance);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_eval_stages: %s\n", e.what());
    return 1;
  }
  return 0;
}
