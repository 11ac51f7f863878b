// BLIP's retrieval evaluation on synthetic data with the full-size architecture (random weights):
// per-stage times, achieved GFLOP/s against a GEMM measured in the same run, peak RSS, and the
// speedup of the optimized rerank over the straightforward (reference) one. Each mode runs in its
// own child process, so that its peak RSS is its own; the parent then checks that both modes give
// the same score matrices (within 1e-4), the same -100 layout and identical metrics.
//
//   bench_eval_rerank [--images 16] [--captions-per-image 5] [--k 16] [--config configs/retrieval_coco.yaml]
//                     [--modes reference,optimized,optimized-bf16] [--threads N] [--seed 0] [--bracket]
//
// --bracket also runs the second mode before the first, and compares the first with the mean of
// the second's two runs: on a machine whose speed drifts over the minutes of a long run, a drift
// that favours one mode then counts for both.
// --load writes the random model as a BLIP checkpoint (1.9 GB for ViT-B with its momentum
// encoders and queues, as BLIP's retrieval checkpoints hold them) and each mode loads it as it
// would: the reference as BLIP does (build with random init, then read and copy the checkpoint),
// the optimized modes through load_blip_retrieval. Its time is reported and added to the total.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "blip/blas_kernels.h"
#include "blip/config.h"
#include "blip/eval/itm_metrics.h"
#include "blip/eval/retrieval_eval.h"
#include "blip/io/checkpoint.h"
#include "blip/io/safetensors.h"
#include "blip/models/blip_retrieval.h"
#include "blip/models/factory.h"
#include "blip/models/fused_attention.h"
#include "blip/models/state_dict.h"
#include "blip/text/wordpiece_tokenizer.h"
#include "flop_model.h"
#include "blas_info.h"
#include "child_process.h"
#include "gemm_reference.h"
#include "synthetic_retrieval.h"

// Largest |score difference| two fp32 modes may show (issue #8's agreement target).
constexpr double kFp32ScoreTolerance = 1e-4;

namespace {

struct Args {
  int64_t images = 16, captions_per_image = 5, k_test = 16, batch_size = 8, itm_batch = 256;
  std::string config = std::string(BLIP_SOURCE_DIR) + "/configs/retrieval_coco.yaml";
  std::vector<std::string> modes{"reference", "optimized"};
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  uint64_t seed = 0;
  bool bracket = false;
  bool load = false;
  std::string work_dir;
  std::string checkpoint;  // --load: written by the parent
};

double mean_text_tokens(const blip::text::Tokenizer& tok, const std::vector<std::string>& texts) {
  double sum = 0;
  for (const auto& t : texts) sum += static_cast<double>(tok.encode_with_specials(t).size());
  return texts.empty() ? 0 : sum / static_cast<double>(texts.size());
}

// Runs one mode (in a child process) and returns its measurements as JSON.
nlohmann::json run_mode(const Args& args, const std::string& mode_name) {
  at::set_num_threads(args.threads);
  at::manual_seed(args.seed);
  const auto gemm32 = blip::bench::measure_gemm(2048, at::kFloat);

  auto config = blip::load_retrieval_config(args.config);
  const bool reference_mode = mode_name.rfind("reference", 0) == 0;
  const auto load_start = std::chrono::steady_clock::now();
  blip::models::BlipRetrieval model{nullptr};
  if (args.checkpoint.empty()) {
    model = blip::models::make_blip_retrieval(config, /*with_momentum=*/false);
  } else {
    blip::models::LoadOptions load;
    load.ignore_prefixes = blip::models::momentum_state_prefixes();
    if (reference_mode) {  // BLIP: BLIP_Retrieval(...) with its init, then load_checkpoint
      model = blip::models::make_blip_retrieval(config, /*with_momentum=*/false);
      blip::models::load_weights(*model, blip::io::load_model_tensors(args.checkpoint), load);
    } else {
      model = blip::models::load_blip_retrieval(config, args.checkpoint, load, /*with_momentum=*/false);
    }
  }
  const double load_s = args.checkpoint.empty() ? 0.0 : std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  model->eval();
  const blip::text::WordPieceTokenizer tokenizer(blip::bench::synthetic_vocab(), "synthetic vocab");
  const auto split = blip::bench::synthetic_split(args.images, args.captions_per_image, args.seed);

  // "optimized-bf16": a mode name with a precision suffix.
  const auto dash = mode_name.find('-');
  const std::string mode_part = mode_name.substr(0, dash);
  const std::string precision = dash == std::string::npos ? "fp32" : mode_name.substr(dash + 1);
  blip::eval::RetrievalEvalOptions options;
  options.mode = blip::eval::parse_eval_mode(mode_part);
  options.precision = blip::eval::parse_precision(precision);
  if (options.precision != at::kFloat) blip::eval::cast_floating_weights(*model, options.precision);
  options.k_test = args.k_test;
  options.batch_size_test = args.batch_size;
  options.itm_batch = args.itm_batch;
  options.image_size = config.image_size;
  options.image_loader = blip::bench::random_image_loader(config.image_size);
  options.num_workers = 1;
  const auto result = blip::eval::evaluate_retrieval(*model, tokenizer, split, options);

  const auto vit = config.vit_config();
  const auto& bert = config.med;
  const double n_img = static_cast<double>(split.num_images()), n_txt = static_cast<double>(split.num_texts());
  const double image_tokens = static_cast<double>(vit.num_patches() + 1);
  const double rows = static_cast<double>(result.itm_rows);
  const bool reference = options.mode == blip::eval::EvalMode::Reference;
  // Reference: every row is padded to 35 tokens and recomputes the image's cross K/V.
  // Optimized: rows are batched by length (≈ the mean caption length) and K/V are per image.
  const double len = reference ? blip::eval::kEvalMaxTextLength : mean_text_tokens(tokenizer, split.text);
  const double rerank_flops = rows * blip::bench::itm_pair_flops(bert, len, image_tokens) +
                              (reference ? rows : n_img) * blip::bench::cross_kv_flops(bert, image_tokens);
  const double image_flops = n_img * blip::bench::vit_flops(vit);
  const double text_flops = n_txt * blip::bench::text_flops(bert, blip::eval::kEvalMaxTextLength);

  const auto scores = args.work_dir + "/scores_" + mode_name + ".safetensors";
  blip::io::save_safetensors(scores, {{"score_matrix_i2t", result.score_matrix_i2t},
                                      {"score_matrix_t2i", result.score_matrix_t2i}});
  return {{"mode", mode_name},
          {"threads", at::get_num_threads()},
          {"gemm_fp32_gflops", gemm32.gflops},
          {"text_s", result.timing.text_s},
          {"image_s", result.timing.image_s},
          {"rerank_s", result.timing.rerank_s},
          {"total_s", result.timing.total_s + load_s},
          {"load_s", load_s},
          {"itm_rows", result.itm_rows},
          {"mean_tokens", len},
          {"text_gflop", text_flops / 1e9},
          {"image_gflop", image_flops / 1e9},
          {"rerank_gflop", rerank_flops / 1e9},
          {"scores", scores}};
}

nlohmann::json run_in_child(const Args& args, const std::string& mode) {
  return blip::bench::run_in_child(mode, [&] { return run_mode(args, mode); });
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);  // first: OpenBLAS reads OPENBLAS_CORETYPE only at load
  Args args;
  CLI::App app{"Benchmark of BLIP's retrieval evaluation (synthetic data, full-size model, random weights)"};
  app.add_option("--images", args.images, "synthetic images")->check(CLI::PositiveNumber);
  app.add_option("--captions-per-image", args.captions_per_image)->check(CLI::PositiveNumber);
  app.add_option("--k", args.k_test, "k_test")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", args.batch_size, "images per ViT batch")->check(CLI::PositiveNumber);
  app.add_option("--itm-batch", args.itm_batch, "texts per ITM forward (optimized mode)")->check(CLI::PositiveNumber);
  app.add_option("--config", args.config, "retrieval YAML giving the architecture")->check(CLI::ExistingFile);
  app.add_option("--modes", args.modes, "reference, optimized, optimized-bf16 (first two are compared)")
      ->delimiter(',');
  app.add_option("--threads", args.threads)->check(CLI::PositiveNumber);
  app.add_option("--seed", args.seed);
  app.add_flag("--load", args.load, "write the model as a 1.9 GB checkpoint and time each mode's loading of it");
  app.add_flag("--bracket", args.bracket, "run the second mode before and after the first and compare with their mean");
  CLI11_PARSE(app, argc, argv);

  char tmpl[] = "/tmp/blip_bench_XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  args.work_dir = tmpl;
  // Each mode runs in a forked child: stdout must not hold unflushed text when it forks.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const auto coretype = blip::bench::openblas_coretype();
  std::printf("BLIP retrieval evaluation benchmark: %lld images x %lld captions, k_test %lld, config %s\n",
              static_cast<long long>(args.images), static_cast<long long>(args.images * args.captions_per_image),
              static_cast<long long>(args.k_test), args.config.c_str());
  const auto blas_core = blip::blas_kernels().core;
  // (Not fused_attention_threads() here: the modes' children are forked from this process, which
  // must not start OpenMP's thread pool first.)
  std::printf("threads %d, OpenBLAS core %s, OPENBLAS_CORETYPE=%s, fused attention kernel %s (optimized modes)\n",
              args.threads, blas_core.empty() ? "(no OpenBLAS)" : blas_core.c_str(),
              coretype.empty() ? "(unset)" : coretype.c_str(), blip::models::fused_attention_kernel());
  std::printf("bf16 hardware: %s\n\n", blip::bench::bf16_hardware_summary().c_str());

  if (args.load) {
    args.checkpoint = args.work_dir + "/checkpoint.pth";
    // In a child: the modes' children are forked from this process, and would count the source
    // model's pages in their peak RSS.
    blip::bench::run_in_child("write checkpoint", [&] {
      at::manual_seed(args.seed);
      auto source = blip::models::make_blip_retrieval(blip::load_retrieval_config(args.config), /*with_momentum=*/true);
      blip::io::save_pth(args.checkpoint, blip::models::named_state(*source), nlohmann::json::object(), 0);
      return nlohmann::json::object();
    });
    std::printf("checkpoint: %.2f GB written; each mode loads it (total s includes load s)\n\n",
                static_cast<double>(std::filesystem::file_size(args.checkpoint)) / 1e9);
  }
  std::vector<nlohmann::json> runs;
  std::optional<nlohmann::json> before;  // --bracket: the second mode, run first
  try {
    if (args.bracket && args.modes.size() >= 2) {
      before = run_in_child(args, args.modes[1]);
      (*before)["mode"] = args.modes[1] + "-before";
    }
    for (const auto& mode : args.modes) runs.push_back(run_in_child(args, mode));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_eval_rerank: %s\n", e.what());
    return 1;
  }

  std::printf("%-17s %8s %7s %9s %9s %9s %9s %10s %10s %10s %9s %8s\n", "mode", "GEMM", "load s", "text s", "image s",
              "rerank s", "total s", "image GF/s", "rerank GF/s", "ITM rows", "tokens", "RSS MiB");
  std::vector<nlohmann::json> in_order = runs;  // as they ran
  if (before) in_order.insert(in_order.begin(), *before);
  for (const auto& r : in_order) {
    std::printf("%-17s %8.0f %7.2f %9.2f %9.2f %9.2f %9.2f %10.1f %10.1f %10lld %9.1f %8.0f\n",
                r["mode"].get<std::string>().c_str(), r["gemm_fp32_gflops"].get<double>(), r["load_s"].get<double>(),
                r["text_s"].get<double>(),
                r["image_s"].get<double>(), r["rerank_s"].get<double>(), r["total_s"].get<double>(),
                r["image_gflop"].get<double>() / r["image_s"].get<double>(),
                r["rerank_gflop"].get<double>() / r["rerank_s"].get<double>(),
                static_cast<long long>(r["itm_rows"].get<int64_t>()), r["mean_tokens"].get<double>(),
                r["peak_rss_mib"].get<double>());
  }
  std::printf("(GEMM: 2048^2 fp32 GFLOP/s measured in the same process; GF/s: model FLOPs / stage time;\n"
              " reference ITM rows are padded to 35 tokens and recompute the image's cross-attention K/V)\n");

  // COCO's 5k test split at BLIP's k_test 256, from this run's per-text, per-image and per-ITM-row
  // costs: 25,000 text encodings, 5,000 ViT passes, 5,000 x 256 i2t + 25,000 x 256 t2i ITM rows
  // (optimized mode scores a pair in both lists once, so its rows are at most that).
  constexpr double kCocoImages = 5000, kCocoTexts = 25000, kCocoK = 256;
  const double n_img = static_cast<double>(args.images), n_txt = static_cast<double>(args.images * args.captions_per_image);
  std::printf("\nprojection to COCO 5k test (5,000 images x 25,000 captions, k_test 256) on this machine:\n");
  for (const auto& r : in_order) {
    const double rows = static_cast<double>(r["itm_rows"].get<int64_t>());
    const double per_row = rows > 0 ? r["rerank_s"].get<double>() / rows : 0;
    const double text_s = kCocoTexts * r["text_s"].get<double>() / n_txt;
    const double image_s = kCocoImages * r["image_s"].get<double>() / n_img;
    const double rerank_s = (kCocoImages + kCocoTexts) * kCocoK * per_row;
    std::printf("  %-16s text %6.2f h, images %6.2f h, ITM rerank %7.1f h (%.1f ms per row): %7.1f h\n",
                r["mode"].get<std::string>().c_str(), text_s / 3600, image_s / 3600, rerank_s / 3600, per_row * 1e3,
                (text_s + image_s + rerank_s) / 3600);
  }

  // The correctness check: a disagreement is a non-zero exit.
  const auto split = blip::bench::synthetic_split(args.images, args.captions_per_image, args.seed);
  auto agrees = [&](const nlohmann::json& ref, const nlohmann::json& opt) {
    std::map<std::string, at::Tensor> a, b;
    for (auto& [n, t] : blip::io::load_safetensors(ref["scores"].get<std::string>())) a[n] = t;
    for (auto& [n, t] : blip::io::load_safetensors(opt["scores"].get<std::string>())) b[n] = t;
    bool same_layout = true;
    double max_diff = 0;
    for (const char* name : {"score_matrix_i2t", "score_matrix_t2i"}) {
      same_layout &= at::equal(a[name] == -100.0f, b[name] == -100.0f);
      max_diff = std::max(max_diff, (a[name] - b[name]).abs().max().item<double>());
    }
    const auto ma = blip::eval::itm_eval(a["score_matrix_i2t"], a["score_matrix_t2i"], split.txt2img, split.img2txt);
    const auto mb = blip::eval::itm_eval(b["score_matrix_i2t"], b["score_matrix_t2i"], split.txt2img, split.img2txt);
    const bool same_metrics = ma.items() == mb.items();
    std::printf("scores %s vs %s: max |diff| %.2e, same top-k (-100) layout: %s, identical metrics: %s\n",
                opt["mode"].get<std::string>().c_str(), ref["mode"].get<std::string>().c_str(), max_diff,
                same_layout ? "yes" : "NO", same_metrics ? "yes" : "NO");
    // Two fp32 modes must agree (issue #8: same metrics, scores within 1e-4); a bf16 mode in the
    // second place is only reported.
    auto is_fp32 = [](const std::string& mode) { return mode.find("bf16") == std::string::npos; };
    if (!is_fp32(ref["mode"].get<std::string>()) || !is_fp32(opt["mode"].get<std::string>())) return true;
    return same_layout && same_metrics && max_diff <= kFp32ScoreTolerance;
  };
  bool agree = true;
  if (runs.size() >= 2) {
    const auto& ref = runs[0];
    const auto& opt = runs[1];
    const char* ref_name = ref["mode"].get_ref<const std::string&>().c_str();
    const char* opt_name = opt["mode"].get_ref<const std::string&>().c_str();
    auto ratio = [&](const nlohmann::json& o, const char* key) { return ref[key].get<double>() / o[key].get<double>(); };
    if (before) {
      auto mean = [&](const char* key) { return 0.5 * ((*before)[key].get<double>() + opt[key].get<double>()); };
      std::printf("\nspeedup %s -> %s (mean of its runs before and after): rerank %.2fx, total %.2fx\n", ref_name,
                  opt_name, ref["rerank_s"].get<double>() / mean("rerank_s"), ref["total_s"].get<double>() / mean("total_s"));
      std::printf("  against the run before: rerank %.2fx, total %.2fx; after: rerank %.2fx, total %.2fx\n",
                  ratio(*before, "rerank_s"), ratio(*before, "total_s"), ratio(opt, "rerank_s"), ratio(opt, "total_s"));
    } else {
      std::printf("\nspeedup %s -> %s: rerank %.2fx, total %.2fx\n", ref_name, opt_name, ratio(opt, "rerank_s"),
                  ratio(opt, "total_s"));
    }
    agree = agrees(ref, opt);
    if (before) agree = agrees(ref, *before) && agree;
  }
  for (size_t i = 2; i < runs.size(); ++i) {
    std::map<std::string, at::Tensor> a, c;
    for (auto& [n, t] : blip::io::load_safetensors(runs[0]["scores"].get<std::string>())) a[n] = t;
    for (auto& [n, t] : blip::io::load_safetensors(runs[i]["scores"].get<std::string>())) c[n] = t;
    const auto both = (a["score_matrix_i2t"] != -100.0f) & (c["score_matrix_i2t"] != -100.0f);
    const double diff = (a["score_matrix_i2t"] - c["score_matrix_i2t"]).abs().masked_select(both).max().item<double>();
    const double overlap = both.sum().item<double>() / (a["score_matrix_i2t"] != -100.0f).sum().item<double>();
    std::printf("%s vs %s: rerank %.2fx faster; i2t top-k overlap %.1f%%, max |diff| %.3f on shared entries\n",
                runs[i]["mode"].get<std::string>().c_str(), runs[0]["mode"].get<std::string>().c_str(),
                runs[0]["rerank_s"].get<double>() / runs[i]["rerank_s"].get<double>(), 100.0 * overlap, diff);
  }
  for (const auto& r : in_order) std::remove(r["scores"].get<std::string>().c_str());
  if (!args.checkpoint.empty()) std::remove(args.checkpoint.c_str());
  rmdir(tmpl);
  if (!agree) {
    std::fprintf(stderr, "bench_eval_rerank: FAILED: %s and %s disagree (see the scores line)\n",
                 args.modes[0].c_str(), args.modes[1].c_str());
    return 1;
  }
  return 0;
}
