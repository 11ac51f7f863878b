// blip_train: BLIP's retrieval fine-tuning (train_retrieval.py), alone or one process per rank
// under torchrun --no-python / srun (Gloo on CPU, NCCL on CUDA).
//   blip_train --config FILE --output_dir DIR [--resume FILE] [--evaluate] [--seed N]
//              [--device cpu|cuda] [--threads N] [--precision fp32|bf16|fp16] [--max_epoch N]
//              [--batch_size_train N] [--max_steps N] [--save-every N] [--dist-timeout S]
//              [--workers N] [--set key=value ...] [--quiet]
// Writes into output_dir (rank 0): config.yaml, log.txt (BLIP's line per epoch), report.html,
// checkpoint_best.pth (BLIP's format), checkpoint_last.pth (for --resume); evaluate.txt with --evaluate.
// Usage errors and bad input: one line on stderr, exit 1.
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "blip/blas_kernels.h"
#include "blip/config.h"
#include "blip/dist/distributed.h"
#include "blip/dist/num_threads.h"
#include "blip/error.h"
#include "blip/eval/progress.h"
#include "blip/eval/retrieval_eval.h"
#include "blip/train/trainer.h"
#include "blip/retrieval/precision.h"
#include "cli_common.h"


int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);  // first: OpenBLAS reads OPENBLAS_CORETYPE only at load
  CLI::App app{"BLIP image-text retrieval fine-tuning (train_retrieval.py)"};
  std::string config_path, output_dir, resume, device_arg = "cpu", precision_arg = "fp32";
  std::vector<std::string> set_items;
  std::int64_t seed = 42, max_epoch = 0, batch_size_train = 0, max_steps = 0, save_every = 0;
  int threads = 0, workers = 4;
  double dist_timeout_s = 1800;
  bool evaluate = false, quiet = false;
  app.add_option("--config", config_path, "retrieval YAML (BLIP's configs/retrieval_*.yaml layout)")->required();
  app.add_option("--output_dir,--output-dir", output_dir, "where checkpoints, log.txt and report.html go")
      ->required()
      ->check(blip::cli::non_empty_path());
  app.add_option("--resume", resume, "continue from a checkpoint_last.pth (or start from a BLIP checkpoint)");
  app.add_flag("--evaluate", evaluate, "evaluate val and test once (evaluate.txt), no training");
  app.add_option("--seed", seed, "random seed (torch uses seed + rank, as BLIP); default 42")
      ->transform(blip::cli::int_range(0, blip::cli::kMaxSeed));
  app.add_option("--device", device_arg, "cpu (default) or cuda[:n]; each rank takes LOCAL_RANK's GPU");
  app.add_option("--threads", threads,
                 "CPU threads (default: OMP_NUM_THREADS, else the cores divided among this host's ranks)")
      ->transform(blip::cli::int_range(1, blip::cli::kMaxThreads));
  app.add_option("--precision", precision_arg, "fp32 (default), bf16 (autocast) or fp16 (CUDA, grad scaler)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_option("--max_epoch,--max-epoch", max_epoch, "override the config's max_epoch")
      ->transform(blip::cli::int_range(1, 1000000));
  app.add_option("--batch_size_train,--batch-size-train", batch_size_train, "override batch_size_train (per rank)")
      ->transform(blip::cli::int_range(1, blip::cli::kMaxBatch));
  app.add_option("--max_steps,--max-steps", max_steps,
                 "stop after N optimizer steps in total, then evaluate and save as at an epoch's end")
      ->transform(blip::cli::int_range(1, std::int64_t{1} << 40));
  app.add_option("--save-every,--save_every", save_every, "also write checkpoint_last.pth every N steps")
      ->transform(blip::cli::int_range(1, std::int64_t{1} << 40));
  app.add_option("--dist-timeout,--dist_timeout", dist_timeout_s,
                 "seconds to wait for peers and for each collective (default 1800)")
      ->check(blip::cli::number_range(0.001, blip::cli::kMaxDistTimeoutS));
  app.add_option("--workers", workers, "image decoding threads per rank (default 4)")
      ->transform(blip::cli::int_range(0, blip::cli::kMaxWorkers));
  app.add_option("--set", set_items, "override a config key: key=value (repeatable)");
  app.add_flag("--quiet", quiet, "no progress bar and no per-epoch lines");
  if (const int code = blip::cli::parse(app, argc, argv, "blip_train"); code >= 0) return code;

  try {
    blip::dist::DistOptions dopt;
    dopt.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(dist_timeout_s * 1000)));
    dopt.use_cuda = device_arg.rfind("cuda", 0) == 0;
    const blip::dist::LaunchInfo launch = blip::dist::detect_launch();
    at::set_num_threads(threads > 0 ? threads : blip::dist::default_num_threads(launch));
    const blip::dist::DistContext dist = blip::dist::init_distributed(launch, dopt);

    auto overrides = blip::parse_overrides(set_items, "--set");
    if (max_epoch > 0) overrides["max_epoch"] = std::to_string(max_epoch);
    if (batch_size_train > 0) overrides["batch_size_train"] = std::to_string(batch_size_train);
    const blip::RetrievalConfig config = blip::load_retrieval_config(config_path, overrides);

    blip::train::TrainOptions o;
    o.output_dir = output_dir;
    o.resume = resume;
    o.evaluate = evaluate;
    o.seed = static_cast<std::uint64_t>(seed);
    o.device = blip::retrieval::parse_device(device_arg, "--device", dist.local_rank());  // set_device(LOCAL_RANK)
    o.precision = blip::retrieval::parse_precision(precision_arg);
    o.max_steps = max_steps;
    o.save_every = save_every;
    o.num_workers = workers;
    o.show_progress = blip::eval::progress_enabled(quiet);
    if (!quiet) o.log = [](const std::string& line) { std::printf("%s\n", line.c_str()), std::fflush(stdout); };
    if (dist.distributed() && dist.is_main() && !quiet)
      std::printf("distributed: %d ranks (%s, %s), %d threads per rank\n", dist.world_size(),
                  dist.launch().launcher.c_str(), dist.backend().c_str(), at::get_num_threads());
    const auto r = blip::train::train_retrieval(config, o, dist);
    if (dist.is_main() && !evaluate)
      std::printf("done: %lld steps, best val r_mean %.2f at epoch %lld (%s)\n",
                  static_cast<long long>(r.global_step), r.best, static_cast<long long>(r.best_epoch),
                  output_dir.c_str());
    if (dist.is_main()) blip::cli::note_cpu_bf16("blip_train", o.precision == at::kBFloat16 && o.device.is_cpu());
    return 0;
  } catch (...) {
    return blip::cli::report_exception("blip_train", "lower batch_size_train or image_size");
  }
}
