// blip_index: embeds a folder (recursively) or a list of images into an index for blip_search.
//   blip_index --config FILE (--images DIR | --image-list FILE) --out INDEX.safetensors
//              [--checkpoint FILE] [--vocab FILE] [--threads N] [--device cpu|cuda]
//              [--precision fp32|bf16|fp16] [--batch_size N] [--workers N] [--store-tokens] [--quiet]
// Incremental: an existing --out is updated (unchanged files kept, new and changed ones embedded,
// vanished ones dropped). Under torchrun the images are shared between the ranks; rank 0 writes.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "blip/blas_kernels.h"
#include "blip/dist/distributed.h"
#include "blip/dist/num_threads.h"
#include "blip/error.h"
#include "blip/eval/progress.h"
#include "blip/io/atomic_write.h"
#include "blip/retrieval/image_embedding.h"
#include "blip/retrieval/image_index.h"
#include "blip/retrieval/precision.h"
#include "blip/retriever.h"
#include "cli_common.h"

namespace {

// Absolute, lexically normal paths: an index stays valid when blip_search runs elsewhere, and the
// same file is recognised whichever directory blip_index was started from.
std::vector<std::string> absolute_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  out.reserve(paths.size());
  for (const auto& p : paths) out.push_back(std::filesystem::absolute(p).lexically_normal().string());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);  // first: OpenBLAS reads OPENBLAS_CORETYPE only at load
  CLI::App app{"Embed a folder or list of images into a BLIP search index (safetensors)"};
  std::string config_path, images_dir, image_list, out_path, checkpoint, vocab;
  std::string device_arg = "cpu", precision_arg = "fp32";
  int threads = 0, workers = 2;
  std::int64_t batch_size = blip::retrieval::kIndexImageBatch;
  double dist_timeout_s = 30;
  bool store_tokens = false, quiet = false, non_strict = false;
  app.add_option("--config", config_path, "retrieval YAML (BLIP's layout)")->required();
  auto* dir_opt = app.add_option("--images", images_dir, "folder of images, searched recursively");
  auto* list_opt = app.add_option("--image-list", image_list, "text file with one image path per line");
  dir_opt->excludes(list_opt);
  app.add_option("--out", out_path, "index file (.safetensors); updated in place when it exists")
      ->required()
      ->check(blip::cli::non_empty_path());
  app.add_option("--checkpoint", checkpoint, "checkpoint (.pth or .safetensors); overrides `pretrained`");
  app.add_option("--vocab", vocab, "vocab.txt or SentencePiece .model; overrides `tokenizer`");
  app.add_option("--threads", threads, "CPU threads for torch (default: all cores; OMP_NUM_THREADS under torchrun)")
      ->transform(blip::cli::int_range(1, blip::cli::kMaxThreads));
  app.add_option("--device", device_arg, "cpu (default), cuda or cuda:<n> (cuda: each rank uses LOCAL_RANK)");
  app.add_option("--precision", precision_arg, "fp32 (default), bf16 or fp16 (cuda only)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_option("--batch_size,--batch-size", batch_size, "images per ViT batch")
      ->transform(blip::cli::int_range(1, blip::cli::kMaxBatch))
      ->capture_default_str();
  app.add_option("--workers", workers, "image decoding threads (0: decode in the main thread)")
      ->transform(blip::cli::int_range(0, blip::cli::kMaxWorkers))
      ->capture_default_str();
  app.add_flag("--store-tokens", store_tokens,
               "also store the ViT tokens (float16, ~0.9 MB per image at 384 px) so that "
               "blip_search --rerank need not decode the images again");
  app.add_flag("--quiet", quiet, "no progress bar");
  app.add_flag("--non-strict", non_strict, "load like BLIP's load_checkpoint: drop shape-mismatched keys");
  app.add_option("--dist-timeout", dist_timeout_s, "seconds to wait for peers / the master")
      ->check(blip::cli::positive_up_to(blip::cli::kMaxDistTimeoutS));
  if (const int code = blip::cli::parse(app, argc, argv, "blip_index"); code >= 0) return code;

  try {
    if (images_dir.empty() && image_list.empty()) blip::fail("blip_index", "give --images DIR or --image-list FILE");
    blip::dist::DistOptions dopt;
    dopt.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(dist_timeout_s * 1000)));
    dopt.use_cuda = device_arg.rfind("cuda", 0) == 0;
    const blip::dist::DistContext dist = blip::dist::init_distributed(dopt);
    const bool main_rank = dist.is_main();
    at::set_num_threads(threads > 0 ? threads : blip::dist::default_num_threads(dist.launch()));

    // Check the destination before any compute; an existing index is read (and must be one).
    const std::filesystem::path out_abs = std::filesystem::absolute(out_path);
    if (main_rank) blip::io::ensure_writable_directory(out_abs.parent_path().string());
    blip::retrieval::ImageIndex index;
    if (std::filesystem::exists(out_abs)) index = blip::retrieval::load_image_index(out_path);

    const std::vector<std::string> paths = absolute_paths(
        images_dir.empty() ? blip::retrieval::read_image_list(image_list) : blip::retrieval::list_image_files(images_dir));
    if (paths.empty())
      blip::fail(images_dir.empty() ? image_list : images_dir, "no images found (.jpg .jpeg .png .bmp .webp .tif .tiff)");

    blip::RetrieverOptions ro;
    ro.checkpoint = checkpoint;
    ro.vocab = vocab;
    const c10::Device device =
        blip::retrieval::parse_device(device_arg, "--device", dist.distributed() ? dist.local_rank() : -1);
    ro.device = device.str();
    ro.precision = precision_arg;
    ro.image_batch = batch_size;
    ro.loader_workers = workers;
    ro.strict_checkpoint = !non_strict;
    const blip::Retriever retriever = blip::Retriever::load(config_path, ro);
    if (main_rank && !retriever.checkpoint_report().empty())
      std::fprintf(stderr, "checkpoint %s\n", retriever.checkpoint_report().c_str());

    if (index.size() > 0 && index.fingerprint != retriever.fingerprint())
      blip::fail(out_path, "was built with another model, image size or precision (index " + index.fingerprint +
                               ", now " + retriever.fingerprint() +
                               "): give a new --out, or delete this index to rebuild it");

    // Created at the first report, which knows how many images this rank embeds.
    std::unique_ptr<blip::eval::ProgressBar> bar;
    std::int64_t shown = 0;
    blip::IndexBuildOptions bo;
    bo.store_tokens = store_tokens;
    bo.dist = &dist;
    bo.on_progress = [&](const blip::IndexProgress& p) {
      if (!bar)
        bar = std::make_unique<blip::eval::ProgressBar>("embedding images", p.total,
                                                        main_rank && blip::eval::progress_enabled(quiet));
      bar->advance(p.done - shown);
      shown = p.done;
    };
    const auto start = std::chrono::steady_clock::now();
    const blip::IndexUpdateReport report = retriever.update_index(index, paths, bo);
    if (bar) bar->finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!main_rank) return 0;
    for (const auto& s : report.skipped) std::fprintf(stderr, "blip_index: skipped %s\n", s.reason.c_str());
    blip::retrieval::save_image_index(out_path, index);
    std::printf("indexed %lld images in %s: %lld embedded (%.1f images/s), %lld unchanged, %lld removed, "
                "%zu skipped%s\n",
                static_cast<long long>(index.size()), out_path.c_str(), static_cast<long long>(report.embedded),
                report.embedded > 0 && seconds > 0 ? static_cast<double>(report.embedded) / seconds : 0.0,
                static_cast<long long>(report.kept), static_cast<long long>(report.removed), report.skipped.size(),
                index.has_tokens() ? ", with ViT tokens" : "");
    blip::cli::note_cpu_bf16("blip_index", precision_arg == "bf16" && device.is_cpu());
    return 0;
  } catch (...) {
    return blip::cli::report_exception("blip_index", "lower --batch_size or use --precision bf16");
  }
}
