// Loading a full-size BLIP checkpoint, side by side in one run:
//   init+load  what BLIP does: build the model with its random initialisation, then read the
//              checkpoint and copy it in (make_blip_retrieval + load_model_tensors + load_weights);
//   load       load_blip_retrieval: no random init for what the checkpoint covers, and the tensors
//              mapped from the file (CRC-checked) rather than read into memory first;
// and a memcpy of the same number of bytes between pre-faulted buffers, measured in the same run.
// The page cache is warmed first, so the figures are the CPU's work, not the disk's. The check:
// both ways give the same tensors, bit for bit (else exit 1).
//
//   bench_checkpoint_load [--config configs/retrieval_coco.yaml] [--checkpoint PATH] [--momentum]
//                         [--repeat 3] [--threads N]
// Without --checkpoint, a checkpoint of the config's model with random weights (with its momentum
// encoders and queues, as BLIP saves them) is written to a temporary folder and removed at the end.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "blip/blas_kernels.h"
#include "blip/config.h"
#include "blip/io/checkpoint.h"
#include "blip/models/factory.h"
#include "blip/models/state_dict.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Reads the file once so that every timed load finds it in the page cache.
void warm_page_cache(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf(1 << 22);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
  }
}

// GB/s of a memcpy of `bytes` between two buffers already faulted in (best of 3).
double memcpy_gbps(std::size_t bytes) {
  std::vector<char> a(bytes, 1), b(bytes, 2);
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const auto t = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    best = std::min(best, seconds_since(t));
  }
  return static_cast<double>(bytes) / best / 1e9;
}

std::size_t state_bytes(const torch::nn::Module& model) {
  std::size_t n = 0;
  for (const auto& [name, t] : blip::models::named_state(model)) n += t.nbytes();
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);
  std::string config_path = std::string(BLIP_SOURCE_DIR) + "/configs/retrieval_coco.yaml", checkpoint;
  bool momentum = false;
  int repeat = 3;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CLI::App app{"Benchmark of loading a BLIP checkpoint: BLIP's init-then-load against load_blip_retrieval"};
  app.add_option("--config", config_path, "retrieval YAML giving the architecture")->check(CLI::ExistingFile);
  app.add_option("--checkpoint", checkpoint, "a BLIP .pth or .safetensors (default: write one with random weights)")
      ->check(CLI::ExistingFile);
  app.add_flag("--momentum", momentum, "build and load the momentum encoders and queues too (training)");
  app.add_option("--repeat", repeat, "timed loads of each way, interleaved")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads)->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);

  try {
    const blip::RetrievalConfig config = blip::load_retrieval_config(config_path);
    std::filesystem::path tmp;
    if (checkpoint.empty()) {
      tmp = std::filesystem::temp_directory_path() / ("blip_bench_load_" + std::to_string(::getpid()));
      std::filesystem::create_directories(tmp);
      checkpoint = (tmp / "checkpoint.pth").string();
      at::manual_seed(0);
      auto source = blip::models::make_blip_retrieval(config, /*with_momentum=*/true);
      blip::io::save_pth(checkpoint, blip::models::named_state(*source), nlohmann::json::object(), 0);
    }
    warm_page_cache(checkpoint);
    blip::models::LoadOptions options;
    options.strict = false;  // a user's checkpoint may differ from the config; both ways report it
    if (!momentum) options.ignore_prefixes = blip::models::momentum_state_prefixes();

    std::printf("checkpoint %s (%.2f GB), momentum encoders %s, threads %d, OpenBLAS core %s\n", checkpoint.c_str(),
                static_cast<double>(std::filesystem::file_size(checkpoint)) / 1e9, momentum ? "loaded" : "not built",
                threads, blip::blas_kernels().core.c_str());
    std::printf("%-4s %12s %12s\n", "run", "init+load s", "load s");
    double best_ref = 1e30, best_new = 1e30;
    bool same = true;
    std::size_t bytes = 0;
    for (int r = 0; r < repeat; ++r) {
      auto t = std::chrono::steady_clock::now();
      auto reference = blip::models::make_blip_retrieval(config, momentum);
      blip::models::load_weights(*reference, blip::io::load_model_tensors(checkpoint), options);
      const double ref_s = seconds_since(t);

      t = std::chrono::steady_clock::now();
      auto loaded = blip::models::load_blip_retrieval(config, checkpoint, options, momentum);
      const double new_s = seconds_since(t);

      const auto a = blip::models::named_state(*reference), b = blip::models::named_state(*loaded);
      same = same && a.size() == b.size();
      for (std::size_t i = 0; same && i < a.size(); ++i) same = a[i].first == b[i].first && at::equal(a[i].second, b[i].second);
      bytes = state_bytes(*loaded);
      best_ref = std::min(best_ref, ref_s);
      best_new = std::min(best_new, new_s);
      std::printf("%-4d %12.2f %12.2f\n", r + 1, ref_s, new_s);
    }
    const double gbps = memcpy_gbps(bytes);
    std::printf("\nbest: init+load %.2f s, load %.2f s: %.1fx faster\n", best_ref, best_new, best_ref / best_new);
    std::printf("model state %.2f GB: load moves it at %.1f GB/s; memcpy in this run %.1f GB/s (load = %.0f%% of it)\n",
                static_cast<double>(bytes) / 1e9, static_cast<double>(bytes) / best_new / 1e9, gbps,
                100.0 * static_cast<double>(bytes) / best_new / 1e9 / gbps);
    std::printf("check: both ways give the same tensors bit for bit: %s\n", same ? "yes" : "NO");
    if (!tmp.empty()) std::filesystem::remove_all(tmp);
    if (!same) {
      std::fprintf(stderr, "bench_checkpoint_load: FAILED: the two ways loaded different tensors\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_checkpoint_load: %s\n", e.what());
    return 1;
  }
  return 0;
}
