// blip_demo_data: writes the synthetic retrieval dataset of blip/data/synthetic_scenes.h (shapes
// with templated captions, in BLIP's annotation formats) for the demo and for tests.
//   blip_demo_data --out DIR [--train N] [--val N] [--test N] [--size PX] [--captions N] [--seed S]
#include <CLI/CLI.hpp>

#include <cstdio>

#include "blip/blas_kernels.h"
#include "blip/data/synthetic_scenes.h"
#include "blip/error.h"
#include "cli_common.h"

namespace {
constexpr std::int64_t kMaxImagesPerSplit = 10000000;
constexpr std::int64_t kMinImageSize = 32;  // write_synthetic_scenes draws shapes no smaller
constexpr std::int64_t kMaxImageSize = 4096;
}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);  // first: OpenBLAS reads OPENBLAS_CORETYPE only at load
  CLI::App app{"Write a synthetic image-text retrieval dataset (BLIP's annotation formats)"};
  std::string out_dir;
  blip::data::SyntheticScenesOptions options;
  app.add_option("--out", out_dir, "output folder (images/, annotation/, captions.txt)")
      ->required()
      ->check(blip::cli::non_empty_path());
  app.add_option("--train", options.train, "train images")
      ->transform(blip::cli::int_range(0, kMaxImagesPerSplit))
      ->capture_default_str();
  app.add_option("--val", options.val, "val images (each a different scene)")
      ->transform(blip::cli::int_range(0, kMaxImagesPerSplit))
      ->capture_default_str();
  app.add_option("--test", options.test, "test images (each a different scene)")
      ->transform(blip::cli::int_range(0, kMaxImagesPerSplit))
      ->capture_default_str();
  app.add_option("--size", options.image_size, "image side in pixels")
      ->transform(blip::cli::int_range(kMinImageSize, kMaxImageSize))
      ->capture_default_str();
  app.add_option("--captions", options.captions_per_image, "captions per image")
      ->transform(blip::cli::int_range(1, blip::data::scene_caption_templates()))
      ->capture_default_str();
  app.add_option("--seed", options.seed, "random seed (same seed, same dataset)")
      ->transform(blip::cli::int_range(0, blip::cli::kMaxSeed))
      ->capture_default_str();
  if (const int code = blip::cli::parse(app, argc, argv, "blip_demo_data"); code >= 0) return code;

  try {
    const auto s = blip::data::write_synthetic_scenes(out_dir, options);
    std::printf("wrote %s: train %lld images (%lld captions), val %lld (%lld), test %lld (%lld); "
                "%lld distinct scenes\n",
                out_dir.c_str(), static_cast<long long>(s.train_images), static_cast<long long>(s.train_captions),
                static_cast<long long>(s.val_images), static_cast<long long>(s.val_captions),
                static_cast<long long>(s.test_images), static_cast<long long>(s.test_captions),
                static_cast<long long>(blip::data::scene_combinations()));
    return 0;
  } catch (...) {
    return blip::cli::report_exception("blip_demo_data", "write fewer or smaller images");
  }
}
