// blip_eval: BLIP's retrieval evaluation (`train_retrieval.py --config ... --evaluate`).
//   blip_eval --config FILE [--checkpoint FILE] [--vocab FILE] [--output_dir DIR]
//             [--split val|test|both] [--device cpu|cuda[:n]] [--seed N] [--k_test N]
//             [--batch_size N] [--precision fp32|bf16|fp16] [--save-scores] [--quiet]
//             [--mode optimized|reference] [--itm-batch N] [--image-block N]
//             [--max-token-memory GiB] [--workers N] [--threads N] [--skip-bad-images]
//             [--non-strict] [--dist-timeout S] [--dist-backend auto|gloo|nccl] [--set key=value ...]
// Flags override the config's keys; an unknown flag is an error that names it.
// Multi-process: start one process per rank with torchrun or srun (see blip/dist/distributed.h).
// Writes (rank 0): the metrics table on stdout, BLIP's JSON line appended to
// <output_dir>/evaluate.txt and, only with --save-scores, <output_dir>/scores_<split>.safetensors
// (BLIP writes no score files).
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "blip/blas_kernels.h"
#include "blip/config.h"
#include "blip/error.h"
#include "blip/dist/distributed.h"
#include "blip/eval/itm_metrics.h"
#include "blip/eval/progress.h"
#include "blip/eval/report.h"
#include "blip/data/retrieval_dataset.h"
#include "blip/eval/retrieval_eval.h"
#include "blip/models/factory.h"
#include "blip/io/atomic_write.h"
#include "blip/retrieval/precision.h"
#include "blip/text/tokenizer.h"
#include "cli_common.h"

namespace {


// Runs a write of results; a failure is remembered (and reported after the metrics are printed)
// so that a full disk or a vanished directory does not throw away the evaluation itself.
template <class F>
void write_or_remember(std::vector<std::string>& errors, F&& write) {
  try {
    write();
  } catch (const std::exception& e) {
    errors.emplace_back(e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);  // first: OpenBLAS reads OPENBLAS_CORETYPE only at load
  CLI::App app{"BLIP image-text retrieval evaluation (train_retrieval.py --evaluate)"};
  std::string config_path, checkpoint, vocab, output_dir, split_arg = "both", mode_arg = "optimized";
  std::string device_arg = "cpu", dist_backend = "auto", precision_arg = "fp32";
  std::vector<std::string> set_items;
  std::int64_t k_test = 0, batch_size = 0, itm_batch = 256, image_block = 0;
  std::uint64_t seed = 42;
  double max_token_gib = blip::eval::kDefaultMaxTokenMemoryGiB;
  int workers = 4, threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  double dist_timeout_s = 30;
  bool skip_bad = false, quiet = false, non_strict = false, save_scores = false;
  app.add_option("--config", config_path, "retrieval YAML (BLIP's configs/retrieval_*.yaml layout)")
      ->required();
  app.add_option("--checkpoint", checkpoint, "checkpoint (.pth or .safetensors); overrides `pretrained`");
  app.add_option("--vocab", vocab, "vocab.txt or SentencePiece .model; overrides `tokenizer`");
  app.add_option("--output_dir,--output-dir", output_dir,
                 "where evaluate.txt (and, with --save-scores, the score files) go "
                 "(default output/Retrieval_<dataset>)")
      ->check(blip::cli::non_empty_path());
  app.add_option("--split", split_arg, "val, test or both (default both, as BLIP evaluates both)")
      ->check(CLI::IsMember({"val", "test", "both"}));
  app.add_option("--device", device_arg, "cpu (default), cuda or cuda:<n> (cuda: each rank uses LOCAL_RANK)");
  app.add_option("--seed", seed,
                 "torch seed (BLIP: seed + rank; default 42). Evaluation is deterministic anyway: "
                 "no dropout, no sampling")
      ->transform(blip::cli::int_range(0, blip::cli::kMaxSeed))
      ->capture_default_str();
  app.add_option("--k_test,--k-test", k_test, "override the config's k_test (ITM reranks the top k)")
      ->transform(blip::cli::int_range(1, std::int64_t{1} << 31));
  app.add_option("--batch_size,--batch-size", batch_size,
                 "override the config's batch_size_test (images per ViT batch)")
      ->transform(blip::cli::int_range(1, blip::cli::kMaxBatch));
  app.add_option("--precision", precision_arg,
                 "fp32 (default), bf16 or fp16 (cuda only): model weights and activations in that "
                 "type; ITC similarities and score matrices stay fp32")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_flag("--save-scores", save_scores,
               "also write <output_dir>/scores_<split>.safetensors (score_matrix_i2t/t2i, fp32)");
  app.add_flag("--quiet", quiet, "no progress bars and no memory report on stderr");
  app.add_option("--mode", mode_arg, "optimized (default) or reference (evaluation() call for call)")
      ->check(CLI::IsMember({"optimized", "reference"}));
  app.add_option("--itm-batch", itm_batch, "optimized mode: texts per ITM forward")
      ->transform(blip::cli::int_range(1, blip::cli::kMaxBatch));
  app.add_option("--image-block", image_block,
                 "optimized mode: keep only CLS features in the first pass and recompute the ViT "
                 "tokens of N images at a time for the ITM rerank (0: decide from --max-token-memory)")
      ->transform(blip::cli::int_range(0, std::int64_t{1} << 40));
  app.add_option("--max-token-memory", max_token_gib,
                 "optimized mode: GiB of ViT tokens kept in host memory; above it the tokens are "
                 "recomputed in blocks that fit")
      ->check(blip::cli::positive_up_to(1 << 20))
      ->capture_default_str();
  app.add_option("--workers", workers, "image decoding threads (0: decode in the main thread)")
      ->transform(blip::cli::int_range(0, blip::cli::kMaxWorkers));
  app.add_option("--threads", threads, "CPU threads for torch (default: all cores)")
      ->transform(blip::cli::int_range(1, blip::cli::kMaxThreads));
  app.add_flag("--skip-bad-images", skip_bad,
               "report and leave out unreadable images (with their captions) instead of stopping");
  app.add_flag("--non-strict", non_strict,
               "load like BLIP's load_checkpoint: drop shape-mismatched keys, report missing ones "
               "(default: a checkpoint that does not match the config is an error)");
  app.add_option("--dist-timeout", dist_timeout_s, "seconds to wait for peers / the master")
      ->check(blip::cli::positive_up_to(blip::cli::kMaxDistTimeoutS));
  app.add_option("--dist-backend", dist_backend, "auto, gloo or nccl")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}));
  app.add_option("--set", set_items, "override a config key: key=value (repeatable)");
  if (const int code = blip::cli::parse(app, argc, argv, "blip_eval"); code >= 0) return code;

  try {
    at::set_num_threads(threads);
    blip::dist::DistOptions dopt;
    dopt.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(dist_timeout_s * 1000)));
    dopt.backend = dist_backend;
    dopt.use_cuda = device_arg.rfind("cuda", 0) == 0;
    const blip::dist::DistContext dist = blip::dist::init_distributed(dopt);
    const bool main_rank = dist.is_main();
    // As BLIP's main(): seed + rank. Nothing in evaluation draws random numbers (no dropout in
    // eval mode, no sampling), so the results do not depend on it.
    at::manual_seed(seed + static_cast<std::uint64_t>(dist.rank()));
    if (dist.distributed() && main_rank)
      std::printf("distributed: %d ranks (%s, %s)\n", dist.world_size(),
                  dist.launch().launcher.c_str(), dist.backend().c_str());

    auto overrides = blip::parse_overrides(set_items, "--set");
    if (!checkpoint.empty()) overrides["pretrained"] = checkpoint;
    if (!vocab.empty()) overrides["tokenizer"] = vocab;
    if (k_test > 0) overrides["k_test"] = std::to_string(k_test);
    if (batch_size > 0) overrides["batch_size_test"] = std::to_string(batch_size);
    const blip::RetrievalConfig config = blip::load_retrieval_config(config_path, overrides);
    if (config.tokenizer.empty())
      blip::fail(config_path, "no tokenizer: set `tokenizer` in the config or pass --vocab");
    if (output_dir.empty()) output_dir = "output/Retrieval_" + config.dataset;
    // Before any compute: an unwritable output directory must not surface after hours of work.
    if (main_rank) blip::io::ensure_writable_directory(output_dir);

    // Like BLIP's torch.cuda.set_device(LOCAL_RANK): each rank takes its own GPU.
    const c10::Device device =
        blip::retrieval::parse_device(device_arg, "--device", dist.distributed() ? dist.local_rank() : -1);
    const at::ScalarType precision = blip::retrieval::parse_precision(precision_arg);
    blip::retrieval::check_precision(precision, device);
    const auto tokenizer = blip::text::load_tokenizer(config.tokenizer);
    blip::models::LoadOptions load;
    load.strict = !non_strict;
    blip::models::LoadReport report;
    auto model = blip::models::load_blip_retrieval(config, "", load, /*with_momentum=*/false, &report);
    if (!report.complete() && main_rank)
      std::fprintf(stderr, "checkpoint %s:\n%s\n", report.source.c_str(), report.describe().c_str());
    // Cast once here (not per split inside evaluate_retrieval); the fp32 weights are not needed.
    model->to(device);
    blip::retrieval::cast_floating_weights(*model, precision);

    blip::eval::RetrievalEvalOptions opt = blip::eval::eval_options_from_config(config);
    opt.mode = blip::eval::parse_eval_mode(mode_arg);
    opt.itm_batch = itm_batch;
    opt.device = device;
    opt.precision = precision;
    opt.image_block = image_block;
    opt.max_token_memory_gib = max_token_gib;
    opt.num_workers = workers;
    opt.skip_bad_images = skip_bad;
    opt.show_progress = blip::eval::progress_enabled(quiet);

    const std::vector<std::string> splits =
        split_arg == "both" ? std::vector<std::string>{"val", "test"} : std::vector<std::string>{split_arg};
    std::vector<std::pair<std::string, blip::eval::RetrievalMetrics>> results;
    std::vector<std::string> write_errors;  // reported after the metrics table, never instead of it
    for (const auto& name : splits) {
      blip::data::RetrievalSplitSpec spec;
      spec.dataset = config.dataset;
      spec.split = name;
      spec.ann_root = config.ann_root;
      spec.image_root = config.image_root;
      const blip::data::RetrievalSplit split = blip::data::load_retrieval_split(spec);
      if (main_rank)
        std::printf("%s: %lld images, %lld captions (%s)\n", name.c_str(),
                    static_cast<long long>(split.num_images()), static_cast<long long>(split.num_texts()),
                    split.annotation_file.c_str());
      opt.label = name;
      if (main_rank && !quiet)
        std::fprintf(stderr, "%s: %s, %s\n", name.c_str(), blip::retrieval::precision_name(precision),
                     blip::eval::plan_token_memory(model->spec(), split.num_images(), opt, dist)
                         .describe()
                         .c_str());
      const auto r = blip::eval::evaluate_retrieval(*model, *tokenizer, split, opt, dist);
      if (!main_rank) continue;
      if (r.k_i2t < opt.k_test || r.k_t2i < opt.k_test)
        std::fprintf(stderr,
                     "%s: k_test %lld is larger than the split (%lld images, %lld captions): clamped to "
                     "%lld texts per image and %lld images per text, so every such entry is rescored\n",
                     name.c_str(), static_cast<long long>(opt.k_test),
                     static_cast<long long>(r.split.num_images()), static_cast<long long>(r.split.num_texts()),
                     static_cast<long long>(r.k_i2t), static_cast<long long>(r.k_t2i));
      if (!r.skipped.empty())
        std::printf("%s: skipped %zu unreadable image(s) and their captions; scored %lld images, "
                    "%lld captions\n",
                    name.c_str(), r.skipped.size(), static_cast<long long>(r.split.num_images()),
                    static_cast<long long>(r.split.num_texts()));
      std::printf("%s: evaluation %.1f s (text %.1f, images %.1f, rerank %.1f incl. ViT recompute %.1f; "
                  "%lld ITM rows on rank 0)\n",
                  name.c_str(), r.timing.total_s, r.timing.text_s, r.timing.image_s, r.timing.rerank_s,
                  r.timing.recompute_s, static_cast<long long>(r.itm_rows));
      results.emplace_back(name, blip::eval::itm_eval(r.score_matrix_i2t, r.score_matrix_t2i,
                                                      r.split.txt2img, r.split.img2txt));
      if (save_scores)
        write_or_remember(write_errors, [&] {
          const std::string path = blip::eval::save_score_matrices(output_dir, name, r.score_matrix_i2t,
                                                                   r.score_matrix_t2i);
          std::printf("%s: wrote %s\n", name.c_str(), path.c_str());
        });
    }
    if (main_rank) {
      std::printf("\n%s\n", blip::eval::format_metrics_table(results).c_str());
      write_or_remember(write_errors, [&] {
        const std::string log = blip::eval::append_evaluate_log(output_dir, results);
        std::printf("appended to %s\n", log.c_str());
      });
    }
    dist.barrier();
    if (main_rank) blip::cli::note_cpu_bf16("blip_eval", precision == at::kBFloat16 && device.is_cpu());
    if (write_errors.empty()) return 0;
    // The table is out; now say what could not be saved.
    std::fflush(stdout);
    for (const auto& e : write_errors) std::fprintf(stderr, "blip_eval: error: %s\n", e.c_str());
    return blip::cli::kExitUsage;
  } catch (...) {
    std::fflush(stdout);
    return blip::cli::report_exception("blip_eval", "lower --batch_size, --itm-batch or image_size");
  }
}
