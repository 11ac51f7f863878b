// blip_demo_data: writes the synthetic retrieval dataset of blip/data/synthetic_scenes.h (shapes
// with templated captions, in BLIP's annotation formats) for the demo and for tests.
//   blip_demo_data --out DIR [--train N] [--val N] [--test N] [--size PX] [--captions N] [--seed S]
#include <CLI/CLI.hpp>

#include <cstdio>

#include "blip/data/synthetic_scenes.h"
#include "blip/error.h"

int main(int argc, char** argv) {
  CLI::App app{"Write a synthetic image-text retrieval dataset (BLIP's annotation formats)"};
  std::string out_dir;
  blip::data::SyntheticScenesOptions options;
  app.add_option("--out", out_dir, "output folder (images/, annotation/, captions.txt)")->required();
  app.add_option("--train", options.train, "train images")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--val", options.val, "val images (each a different scene)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--test", options.test, "test images (each a different scene)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--size", options.image_size, "image side in pixels")->capture_default_str();
  app.add_option("--captions", options.captions_per_image, "captions per image")->capture_default_str();
  app.add_option("--seed", options.seed, "random seed (same seed, same dataset)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const auto s = blip::data::write_synthetic_scenes(out_dir, options);
    std::printf("wrote %s: train %lld images (%lld captions), val %lld (%lld), test %lld (%lld); "
                "%lld distinct scenes\n",
                out_dir.c_str(), static_cast<long long>(s.train_images), static_cast<long long>(s.train_captions),
                static_cast<long long>(s.val_images), static_cast<long long>(s.val_captions),
                static_cast<long long>(s.test_images), static_cast<long long>(s.test_captions),
                static_cast<long long>(blip::data::scene_combinations()));
    return 0;
  } catch (const blip::Error& e) {
    std::fprintf(stderr, "blip_demo_data: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blip_demo_data: internal error: %s\n", e.what());
    return 2;
  }
}
