// Indexing throughput of blip_index's embedding path (retrieval::embed_image_files: decode +
// transform_test on worker threads, ViT, normalized ITC projection) on BLIP's full-size model with
// random weights, against a GEMM measured in the same run.
//   bench_index_throughput [--images 16] [--config configs/retrieval_coco.yaml] [--threads N]
//                          [--precisions fp32,bf16]
// Correctness (exit 1 when it fails): the fp32 embeddings equal the model's own forward
// (image_feat(image_embeds(transform_test(images)))) within 1e-5, and bf16's have cosine >= 0.99
// with them.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "blas_info.h"
#include "blip/blas_kernels.h"
#include "blip/config.h"
#include "blip/data/image_loader.h"
#include "blip/image/transform.h"
#include "blip/models/blip_retrieval.h"
#include "blip/models/factory.h"
#include "blip/retrieval/image_embedding.h"
#include "blip/retrieval/precision.h"
#include "flop_model.h"
#include "gemm_reference.h"

#ifdef BLIP_WITH_OPENCV
#include <opencv2/imgcodecs.hpp>
#endif

namespace {

constexpr double kFp32Tolerance = 1e-5;
constexpr double kBf16MinCosine = 0.99;

#ifdef BLIP_WITH_OPENCV
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Photo-sized JPEGs (640x480, as COCO's) with smooth structure and noise, so decoding costs what
// it costs on real photos.
std::vector<std::string> write_images(const std::string& dir, int count) {
  std::vector<std::string> paths;
  std::mt19937 rng(0);
  std::normal_distribution<float> noise(0.0f, 12.0f);
  for (int i = 0; i < count; ++i) {
    cv::Mat img(480, 640, CV_8UC3);
    for (int y = 0; y < img.rows; ++y)
      for (int x = 0; x < img.cols; ++x)
        for (int c = 0; c < 3; ++c) {
          const float v = 128 + 100 * std::sin(0.01f * (x * (c + 1) + y * (i + 1))) + noise(rng);
          img.at<cv::Vec3b>(y, x)[c] = cv::saturate_cast<unsigned char>(v);
        }
    paths.push_back(dir + "/img" + std::to_string(i) + ".jpg");
    cv::imwrite(paths.back(), img);
  }
  return paths;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);
  CLI::App app{"blip_index's embedding throughput against a same-run GEMM"};
  int images = 16;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string config_path = std::string(BLIP_SOURCE_DIR) + "/configs/retrieval_coco.yaml";
  std::vector<std::string> precisions{"fp32", "bf16"};
  app.add_option("--images", images, "images to embed")->check(CLI::Range(1, 100000));
  app.add_option("--config", config_path, "model config (the default: BLIP's ViT-B, 384 px)");
  app.add_option("--threads", threads)->check(CLI::Range(1, 4096));
  app.add_option("--precisions", precisions, "fp32 and/or bf16")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
#ifndef BLIP_WITH_OPENCV
  std::fprintf(stderr, "bench_index_throughput: this build has no image decoder (OpenCV)\n");
  return 1;
#else
  at::set_num_threads(threads);
  at::manual_seed(0);
  const std::string dir = (std::filesystem::temp_directory_path() / ("blip_index_bench_" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  const auto paths = write_images(dir, images);
  const auto config = blip::load_retrieval_config(config_path);
  const int image_size = static_cast<int>(config.image_size);

  std::printf("openblas core: %s, threads: %d, oneDNN: %s\n", blip::bench::openblas_corename().c_str(),
              at::get_num_threads(), blip::bench::has_onednn() ? "yes" : "no");
  const auto gemm32 = blip::bench::measure_gemm(2048, at::kFloat);
  const auto gemm16 = blip::bench::measure_gemm(2048, at::kBFloat16);
  std::printf("same-run GEMM 2048^3: fp32 %.0f GFLOP/s, bf16 %.0f GFLOP/s\n", gemm32.gflops, gemm16.gflops);

  // Decoding and transform_test alone (what the loader threads must keep up with).
  {
    blip::data::ImageLoaderOptions lo;
    lo.batch_size = blip::retrieval::kIndexImageBatch;
    lo.num_workers = 2;
    blip::data::ImageBatchLoader loader(paths, blip::data::transform_test_loader(image_size), lo);
    blip::data::ImageBatch batch;
    const auto t0 = std::chrono::steady_clock::now();
    while (loader.next(batch)) {
    }
    std::printf("decode + transform_test (2 workers): %.1f images/s\n", images / seconds_since(t0));
  }

  auto model = blip::models::make_blip_retrieval(config, /*with_momentum=*/false);
  model->eval();
  at::Tensor reference;
  {
    at::NoGradGuard no_grad;
    const auto pixels = blip::image::load_image_batch(paths, image_size);
    std::vector<at::Tensor> parts;
    for (int64_t a = 0; a < pixels.size(0); a += 8)
      parts.push_back(model->image_feat(model->image_embeds(pixels.slice(0, a, std::min<int64_t>(a + 8, pixels.size(0))))));
    reference = at::cat(parts);
  }
  const double vit_gflop = blip::bench::vit_flops(config.vit_config()) / 1e9;
  bool ok = true;
  std::printf("\n%-6s %10s %12s %10s %14s  %s\n", "prec", "images/s", "ViT GFLOP/s", "of GEMM", "max |diff|", "check");
  for (const auto& name : precisions) {
    const at::ScalarType precision = blip::retrieval::parse_precision(name);
    blip::retrieval::cast_floating_weights(*model, precision);
    blip::retrieval::EmbedImagesOptions o;
    o.image_size = image_size;
    o.precision = precision;
    const auto t0 = std::chrono::steady_clock::now();
    const auto out = blip::retrieval::embed_image_files(*model, paths, o);
    const double s = seconds_since(t0);
    blip::retrieval::cast_floating_weights(*model, at::kFloat);
    const double gflops = vit_gflop * images / s;
    const double gemm = precision == at::kFloat ? gemm32.gflops : gemm16.gflops;
    const double diff = (out.embeddings - reference).abs().max().item<double>();
    const double cosine = (out.embeddings * reference).sum(1).min().item<double>();
    const bool pass = out.failed.empty() && (precision == at::kFloat ? diff <= kFp32Tolerance : cosine >= kBf16MinCosine);
    ok = ok && pass;
    std::printf("%-6s %10.2f %12.0f %9.0f%% %14.2e  %s (min cosine %.5f)\n", name.c_str(), images / s, gflops,
                100 * gflops / gemm, diff, pass ? "ok" : "FAILED", cosine);
  }
  std::filesystem::remove_all(dir);
  std::printf("\nViT-%s at %d px: %.1f GFLOP per image (matrix products only)\n", config.vit.c_str(), image_size,
              vit_gflop);
  return ok ? 0 : 1;
#endif
}
