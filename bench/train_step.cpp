// Training-step throughput of BLIP retrieval with the full-size architecture (ViT-B/16 at 384,
// BERT-base med_config, embed 256, queue 57600; random weights, synthetic batch). One step is what
// BLIP's train() does per batch: models::train_forward, backward of loss_ita + loss_itm, AdamW
// step. Modes: fp32 or bf16 autocast (fp16 + GradScaler on CUDA), each with or without ViT
// gradient checkpointing ("-ckpt": vit_ckpt_layer blocks of the config, 4 in retrieval_coco.yaml).
//
// Reports seconds/step, images/s, achieved GFLOP/s (train_flop_model.h) next to 2048^2 GEMMs
// measured in the same process, the OpenBLAS kernels, and peak RSS. Each mode runs in its own
// forked child, so its peak RSS (ru_maxrss of the child) is its own.
//
// The first warmup step of every mode is a check step on identical weights and batch (dropout off,
// fixed negatives, all modes alike). The benchmark exits non-zero when a loss is not finite, when
// a reduced-precision mode's check losses are not within tolerance of fp32's, or when
// checkpointed ViT gradients differ from the non-checkpointed ones of the same precision by more
// than 1e-5 of each tensor's largest gradient.
//
//   bench_train_step [--steps 2] [--warmup 1] [--batch 4] [--modes fp32,fp32-ckpt,bf16,bf16-ckpt]
//                    [--threads N] [--device cpu|cuda] [--tiny] [--config configs/retrieval_coco.yaml]
//                    [--seed 0] [--json results.json]
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <torch/nn/modules/dropout.h>
#include <torch/optim/adamw.h>
#include <torch/version.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "blas_info.h"
#include "blip/blas_kernels.h"
#include "blip/config.h"
#include "blip/io/safetensors.h"
#include "blip/models/factory.h"
#include "blip/models/train_forward.h"
#include "blip/train/autocast.h"
#include "blip/train/grad_scaler.h"
#include "child_process.h"
#include "gemm_reference.h"
#include "train_flop_model.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kTextLength = 35;       // BLIP pads training captions to max_length 35
constexpr int64_t kClsId = 101, kSepId = 102;
constexpr int64_t kGemmSize = 2048, kTinyGemmSize = 512;  // the same-run reference GEMM (n^3)
constexpr double kCkptGradTolerance = 1e-5;  // of each tensor's largest |gradient|
// bf16 keeps 8 significant bits; with random weights loss_ita ~ ln(B + queue) ~ 11 and
// loss_itm ~ 0.7, and the measured differences are below 1% (see the report).
constexpr double kReducedLossTolerance = 2e-2;  // relative to max(1, |fp32 loss|)

struct Args {
  int steps = 2, warmup = 1;
  int64_t batch = 4;
  std::vector<std::string> modes{"fp32", "fp32-ckpt", "bf16", "bf16-ckpt"};
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string device = "cpu";
  bool tiny = false;
  std::string config = std::string(BLIP_SOURCE_DIR) + "/configs/retrieval_coco.yaml";
  uint64_t seed = 0;
  std::string json;
  std::string work_dir;
};

struct Mode {
  std::string name;
  std::string precision;  // fp32 | bf16 | fp16
  at::ScalarType dtype = at::kFloat;
  bool ckpt = false;
};

Mode parse_mode(const std::string& name, bool cuda) {
  Mode m;
  m.name = name;
  const std::string suffix = "-ckpt";
  m.ckpt = name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  m.precision = m.ckpt ? name.substr(0, name.size() - suffix.size()) : name;
  if (m.precision == "fp32") {
    m.dtype = at::kFloat;
  } else if (m.precision == "bf16") {
    m.dtype = at::kBFloat16;
  } else if (m.precision == "fp16" && cuda) {
    m.dtype = at::kHalf;
  } else {
    throw std::runtime_error("unknown mode '" + name + "' (fp32, bf16" + (cuda ? ", fp16" : "") +
                             ", each optionally with -ckpt)");
  }
  return m;
}

// The architecture: the YAML's (full size), or a seconds-long miniature with --tiny.
blip::RetrievalConfig make_config(const Args& args, bool ckpt) {
  std::map<std::string, std::string> overrides;
  if (args.tiny)
    overrides = {{"vit", "custom"},    {"vit_width", "64"},     {"vit_depth", "4"},   {"vit_heads", "2"},
                 {"image_size", "64"}, {"vit_ckpt_layer", "2"}, {"embed_dim", "32"},
                 {"queue_size", std::to_string(16 * args.batch)}};
  auto c = blip::load_retrieval_config(args.config, overrides);
  if (args.tiny) {
    c.med.hidden_size = 64;
    c.med.num_hidden_layers = 2;
    c.med.num_attention_heads = 2;
    c.med.intermediate_size = 128;
  }
  c.vit_grad_ckpt = ckpt;
  if (ckpt && c.vit_ckpt_layer == 0) throw std::runtime_error(args.config + " has vit_ckpt_layer 0: nothing to checkpoint");
  if (c.queue_size % args.batch != 0)
    throw std::runtime_error("queue_size " + std::to_string(c.queue_size) + " is not a multiple of --batch");
  blip::validate(c);
  return c;
}

struct Batch {
  at::Tensor images, input_ids, attention_mask;
  blip::models::ItmNegatives negatives;
};

// Random images, captions of 10-20 random tokens between [CLS] and [SEP] padded to 35, and a
// fixed choice of hard negatives (the next sample), so that every mode sees the same step.
Batch make_batch(const Args& args, const blip::RetrievalConfig& c, at::Device device) {
  Batch b;
  const int64_t n = args.batch;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(args.seed + 1);
  b.images = at::randn({n, 3, c.image_size, c.image_size}, gen).to(device);
  std::mt19937_64 rng(args.seed);
  std::uniform_int_distribution<int64_t> words(10, 20), token(kSepId + 1000, c.med.vocab_size - 2);
  at::Tensor ids = at::zeros({n, kTextLength}, at::kLong), mask = at::zeros({n, kTextLength}, at::kLong);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t len = std::min(words(rng) + 2, kTextLength);
    ids[i][0] = kClsId;
    for (int64_t j = 1; j + 1 < len; ++j) ids[i][j] = token(rng);
    ids[i][len - 1] = kSepId;
    mask.select(0, i).narrow(0, 0, len).fill_(1);
  }
  b.input_ids = ids.to(device);
  b.attention_mask = mask.to(device);
  std::vector<int64_t> next(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) next[static_cast<size_t>(i)] = (i + 1) % n;
  b.negatives.image_for_text = at::tensor(next, at::kLong);
  b.negatives.text_for_image = at::tensor(next, at::kLong);
  return b;
}

double rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

void sync(at::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

std::string load_average() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "?";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", l[0], l[1], l[2]);
  return buf;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

blip::bench::GemmResult measure_gemm_on(at::Device device, at::ScalarType dtype, int64_t n) {
  if (device.is_cpu()) return blip::bench::measure_gemm(n, dtype);
  auto a = at::randn({n, n}, at::TensorOptions().device(device)).to(dtype);
  auto b = at::randn({n, n}, at::TensorOptions().device(device)).to(dtype);
  at::mm(a, b);
  sync(device);
  double best = 1e30;
  for (int i = 0; i < 10; ++i) {
    const auto t0 = Clock::now();
    at::mm(a, b);
    sync(device);
    best = std::min(best, seconds_since(t0));
  }
  return {2.0 * n * n * n / best / 1e9, best};
}

// Sets every Dropout's probability to 0 and returns what it was, for the check step.
std::vector<std::pair<torch::nn::DropoutImpl*, double>> disable_dropout(torch::nn::Module& model) {
  std::vector<std::pair<torch::nn::DropoutImpl*, double>> saved;
  for (const auto& m : model.modules()) {
    if (auto* d = dynamic_cast<torch::nn::DropoutImpl*>(m.get())) {
      saved.emplace_back(d, d->options.p());
      d->options.p(0.0);
    }
  }
  return saved;
}

// Runs one mode (in a child process) and returns its measurements as JSON.
nlohmann::json run_mode(const Args& args, const Mode& mode) {
  at::set_num_threads(args.threads);
  const at::Device device(args.device == "cuda" ? at::kCUDA : at::kCPU);
  const int64_t n = args.tiny ? kTinyGemmSize : kGemmSize;
  const auto gemm32 = measure_gemm_on(device, at::kFloat, n);
  const auto gemm_low = measure_gemm_on(device, mode.dtype == at::kHalf ? at::kHalf : at::kBFloat16, n);

  const auto config = make_config(args, mode.ckpt);
  at::manual_seed(args.seed);
  auto model = blip::models::make_blip_retrieval(config, /*with_momentum=*/true);
  model->to(device);
  model->train();
  const Batch batch = make_batch(args, config, device);
  // BLIP: AdamW(model.parameters(), lr=init_lr, weight_decay); momentum weights never get a grad.
  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(config.init_lr).weight_decay(config.weight_decay));
  blip::train::GradScalerOptions scaler_options;
  scaler_options.enabled = mode.dtype == at::kHalf;
  blip::train::GradScaler scaler(scaler_options);
  int64_t trainable = 0, total = 0;
  for (const auto& p : model->parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  const double rss_model = rss_mib();
  const int64_t enc_token_id = config.med.vocab_size - 1;  // [ENC], the last id of BLIP's tokenizer

  nlohmann::json result{{"mode", mode.name}, {"threads", at::get_num_threads()}, {"device", device.str()}};
  std::vector<double> step_s, fwd_s, bwd_s, opt_s, loss_ita, loss_itm;
  const int steps = args.warmup + args.steps;
  for (int step = 0; step < std::max(steps, 1); ++step) {
    const bool check = step == 0;
    auto dropout = check ? disable_dropout(*model) : decltype(disable_dropout(*model)){};
    // Distinct ids per step, as a data loader gives (the queue then holds earlier batches).
    const at::Tensor idx = at::arange(step * args.batch, (step + 1) * args.batch, at::kLong).to(device);
    sync(device);
    const auto t0 = Clock::now();
    optimizer.zero_grad();
    blip::models::TrainForward r;
    at::Tensor loss;
    {
      blip::train::AutocastGuard autocast(device.type(), mode.dtype);
      r = blip::models::train_forward(*model, batch.images, batch.input_ids, batch.attention_mask, idx,
                                      config.alpha, enc_token_id, &batch.negatives);
      loss = r.loss_ita + r.loss_itm;
    }
    sync(device);
    const double t_fwd = seconds_since(t0);
    const auto t1 = Clock::now();
    scaler.scale(loss).backward();
    sync(device);
    const double t_bwd = seconds_since(t1);
    if (check) {
      for (auto& [d, p] : dropout) d->options.p(p);
      scaler.unscale_(optimizer);  // (no-op unless fp16) the saved gradients are the true ones
      blip::io::NamedTensors grads;
      for (const auto& item : model->visual_encoder->named_parameters())
        if (item.value().grad().defined())
          grads.emplace_back("visual_encoder." + item.key(), item.value().grad().to(at::kFloat).cpu());
      const std::string path = args.work_dir + "/grads_" + mode.name + ".safetensors";
      blip::io::save_safetensors(path, grads);
      result["grads"] = path;
      result["check_loss_ita"] = r.loss_ita.item<double>();
      result["check_loss_itm"] = r.loss_itm.item<double>();
    }
    const auto t2 = Clock::now();
    scaler.step(optimizer);
    scaler.update();
    sync(device);
    const double t_opt = seconds_since(t2);
    loss_ita.push_back(r.loss_ita.item<double>());
    loss_itm.push_back(r.loss_itm.item<double>());
    if (step >= args.warmup) {
      step_s.push_back(t_fwd + t_bwd + t_opt);
      fwd_s.push_back(t_fwd);
      bwd_s.push_back(t_bwd);
      opt_s.push_back(t_opt);
    }
  }

  const auto flops = blip::bench::train_step_flops(config.vit_config(), config.med, args.batch, kTextLength,
                                                   config.embed_dim, config.queue_size);
  result["gemm_fp32_gflops"] = gemm32.gflops;
  result["gemm_low_gflops"] = gemm_low.gflops;
  result["step_s"] = step_s;
  result["fwd_s"] = fwd_s;
  result["bwd_s"] = bwd_s;
  result["opt_s"] = opt_s;
  result["loss_ita"] = loss_ita;
  result["loss_itm"] = loss_itm;
  result["gflop_forward"] = flops.forward / 1e9;
  result["gflop_backward"] = flops.backward / 1e9;
  result["gflop_recompute"] = flops.recompute / 1e9;
  result["gflop_step"] = flops.total() / 1e9;
  result["params_trainable"] = trainable;
  result["params_total"] = total;
  result["rss_model_mib"] = rss_model;
  result["scale"] = scaler.get_scale();
  return result;
}

nlohmann::json run_in_child(const Args& args, const Mode& mode) {
  return blip::bench::run_in_child(mode.name, [&] { return run_mode(args, mode); });
}

double mean(const nlohmann::json& values) {
  double s = 0;
  for (const auto& v : values) s += v.get<double>();
  return values.empty() ? std::nan("") : s / static_cast<double>(values.size());
}

std::map<std::string, at::Tensor> load_grads(const std::string& path) {
  std::map<std::string, at::Tensor> m;
  for (auto& [name, t] : blip::io::load_safetensors(path)) m[name] = t;
  return m;
}

// Largest per-tensor relative difference max|a-b| / max|a| over all tensors, and the tensor;
// also the global relative L2 error ||a-b|| / ||a||.
struct GradDiff {
  double max_rel = 0;
  std::string worst;
  double rel_l2 = 0;
  size_t tensors = 0;
};

GradDiff compare_grads(const std::string& ref_path, const std::string& other_path) {
  const auto a = load_grads(ref_path), b = load_grads(other_path);
  if (a.size() != b.size() || a.empty()) throw std::runtime_error("gradient files hold different tensors");
  GradDiff d;
  double diff2 = 0, ref2 = 0;
  for (const auto& [name, ta] : a) {
    const auto it = b.find(name);
    if (it == b.end() || it->second.sizes() != ta.sizes()) throw std::runtime_error("gradient " + name + " differs in shape");
    const at::Tensor delta = (ta.to(at::kDouble) - it->second.to(at::kDouble));
    const double scale = std::max(ta.abs().max().item<double>(), 1e-30);
    const double rel = delta.abs().max().item<double>() / scale;
    if (rel > d.max_rel || d.worst.empty()) {
      d.max_rel = rel;
      d.worst = name;
    }
    diff2 += delta.pow(2).sum().item<double>();
    ref2 += ta.to(at::kDouble).pow(2).sum().item<double>();
    ++d.tensors;
  }
  d.rel_l2 = std::sqrt(diff2 / std::max(ref2, 1e-300));
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);  // first: OpenBLAS reads OPENBLAS_CORETYPE only at load
  Args args;
  CLI::App app{"Benchmark of one BLIP retrieval training step (full-size model, random weights, synthetic batch)"};
  app.add_option("--steps", args.steps, "timed steps per mode")->check(CLI::PositiveNumber);
  app.add_option("--warmup", args.warmup, "untimed steps first (the first is the check step)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch", args.batch, "images per step")->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  app.add_option("--modes", args.modes, "fp32, bf16 (fp16 on cuda), each optionally with -ckpt")->delimiter(',');
  app.add_option("--threads", args.threads)->check(CLI::PositiveNumber);
  app.add_option("--device", args.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_flag("--tiny", args.tiny, "a seconds-long miniature model (smoke run)");
  app.add_option("--config", args.config, "retrieval YAML giving the architecture")->check(CLI::ExistingFile);
  app.add_option("--seed", args.seed);
  app.add_option("--json", args.json, "also write the measurements to this file");
  CLI11_PARSE(app, argc, argv);

  const bool cuda = args.device == "cuda";
  if (cuda && !torch::cuda::is_available()) {
    std::fprintf(stderr, "bench_train_step: --device cuda but CUDA is not available\n");
    return 1;
  }
  std::vector<Mode> modes;
  try {
    for (const auto& m : args.modes) modes.push_back(parse_mode(m, cuda));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }

  char tmpl[] = "/tmp/blip_bench_train_XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  args.work_dir = tmpl;
  // Each mode runs in a forked child: stdout must not hold unflushed text when it forks.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const auto coretype = blip::bench::openblas_coretype();
  const auto corename = blip::bench::openblas_corename();
  std::printf("BLIP retrieval training-step benchmark: %s model, batch %lld, %d timed + %d warmup steps, device %s\n",
              args.tiny ? "tiny" : "full-size", static_cast<long long>(args.batch), args.steps, args.warmup,
              args.device.c_str());
  std::printf("config %s; LibTorch %s, threads %d, oneDNN %s\n", args.config.c_str(), TORCH_VERSION, args.threads,
              blip::bench::has_onednn() ? "yes" : "no");
  std::printf("OpenBLAS core %s (OPENBLAS_CORETYPE=%s); load average %s\n\n",
              corename.empty() ? "(no OpenBLAS)" : corename.c_str(), coretype.empty() ? "unset" : coretype.c_str(),
              load_average().c_str());

  std::vector<nlohmann::json> runs;
  std::map<std::string, nlohmann::json> by_name;
  try {
    for (const auto& mode : modes) {
      runs.push_back(run_in_child(args, mode));
      by_name[mode.name] = runs.back();
      std::printf("  %s done (%.1f s/step)\n", mode.name.c_str(), mean(runs.back()["step_s"]));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }

  const auto& first = runs.front();
  std::printf("\nload average %s\nmodel: %.1fM trainable + %.1fM momentum parameters; FLOP model per step (GFLOP): "
              "forward %.4g, backward %.4g, checkpoint recompute %.4g\n",
              load_average().c_str(),
              first["params_trainable"].get<double>() / 1e6,
              (first["params_total"].get<double>() - first["params_trainable"].get<double>()) / 1e6,
              first["gflop_forward"].get<double>(), first["gflop_backward"].get<double>(),
              by_name.count("fp32-ckpt") ? by_name["fp32-ckpt"]["gflop_recompute"].get<double>()
                                         : runs.back()["gflop_recompute"].get<double>());
  std::printf("\n%-10s %8s %7s %7s %7s %8s %8s %8s %7s %7s %8s %8s %8s\n", "mode", "s/step", "img/s", "fwd s",
              "bwd s", "opt s", "GFLOP/s", "GEMM32", "GEMMlo", "%GEMM", "GFLOP", "RSS0 MiB", "peak MiB");
  for (const auto& r : runs) {
    const double s = mean(r["step_s"]);
    const double achieved = r["gflop_step"].get<double>() / s;
    const bool low = r["mode"].get<std::string>().rfind("fp32", 0) != 0;
    const double gemm = low ? r["gemm_low_gflops"].get<double>() : r["gemm_fp32_gflops"].get<double>();
    std::printf("%-10s %8.2f %7.3f %7.2f %7.2f %8.2f %8.1f %8.1f %8.1f %6.0f%% %8.4g %8.0f %8.0f\n",
                r["mode"].get<std::string>().c_str(), s, static_cast<double>(args.batch) / s, mean(r["fwd_s"]),
                mean(r["bwd_s"]), mean(r["opt_s"]), achieved, r["gemm_fp32_gflops"].get<double>(),
                r["gemm_low_gflops"].get<double>(), 100.0 * achieved / gemm, r["gflop_step"].get<double>(),
                r["rss_model_mib"].get<double>(), r["peak_rss_mib"].get<double>());
  }
  std::printf("(s/step: mean of the timed steps = fwd + bwd + opt (AdamW, grads zeroed in fwd); GFLOP/s: FLOP model / "
              "s/step;\n GEMM32/GEMMlo: %lld^2 fp32 and %s GFLOP/s in the same process; %%GEMM against the mode's "
              "precision;\n RSS0: after building model and optimizer; peak: ru_maxrss of the mode's child process)\n",
              static_cast<long long>(args.tiny ? kTinyGemmSize : kGemmSize), cuda ? "bf16/fp16" : "bf16");

  // ---- checks ----
  bool ok = true;
  std::printf("\nchecks (first warmup step, dropout off, same weights and batch in every mode):\n");
  for (const auto& r : runs) {
    for (const char* key : {"loss_ita", "loss_itm"})
      for (const auto& v : r[key])
        if (!std::isfinite(v.get<double>())) {
          std::printf("  FAIL %s: %s not finite\n", r["mode"].get<std::string>().c_str(), key);
          ok = false;
        }
    std::printf("  %-10s loss_ita %.6f  loss_itm %.6f  (step losses:", r["mode"].get<std::string>().c_str(),
                r["check_loss_ita"].get<double>(), r["check_loss_itm"].get<double>());
    for (size_t i = 0; i < r["loss_ita"].size(); ++i)
      std::printf(" %.4f", r["loss_ita"][i].get<double>() + r["loss_itm"][i].get<double>());
    std::printf(")\n");
  }
  for (const auto& mode : modes) {
    if (mode.dtype == at::kFloat) continue;
    // fp32 and fp32-ckpt compute the same losses (checked below); either is the reference.
    const std::string base = by_name.count("fp32") ? "fp32" : (by_name.count("fp32-ckpt") ? "fp32-ckpt" : "");
    if (base.empty()) continue;
    const auto& a = by_name[base];
    const auto& b = by_name[mode.name];
    for (const char* key : {"check_loss_ita", "check_loss_itm"}) {
      const double x = a[key].get<double>(), y = b[key].get<double>();
      const double rel = std::abs(x - y) / std::max(1.0, std::abs(x));
      const bool pass = rel <= kReducedLossTolerance;
      ok &= pass;
      std::printf("  %s %s vs %s %s: |diff| %.2e (%.2e of max(1,|fp32|), tolerance %.0e)\n", pass ? "ok  " : "FAIL",
                  mode.name.c_str(), base.c_str(), key + 6, std::abs(x - y), rel, kReducedLossTolerance);
    }
    const auto d = compare_grads(a["grads"].get<std::string>(), b["grads"].get<std::string>());
    std::printf("  info %s vs %s ViT gradients: relative L2 error %.2e\n", mode.name.c_str(), base.c_str(), d.rel_l2);
  }
  for (const auto& mode : modes) {
    if (!mode.ckpt || !by_name.count(mode.precision)) continue;
    const auto d = compare_grads(by_name[mode.precision]["grads"].get<std::string>(),
                                 by_name[mode.name]["grads"].get<std::string>());
    const bool pass = d.max_rel <= kCkptGradTolerance;
    ok &= pass;
    std::printf("  %s %s vs %s: %zu ViT gradients, max |diff| / max |grad| = %.2e (worst %s; tolerance %.0e), "
                "relative L2 %.2e\n",
                pass ? "ok  " : "FAIL", mode.name.c_str(), mode.precision.c_str(), d.tensors, d.max_rel,
                d.worst.c_str(), kCkptGradTolerance, d.rel_l2);
  }

  if (!args.json.empty()) {
    std::ofstream out(args.json);
    out << nlohmann::json{{"runs", runs}, {"checks_passed", ok}, {"openblas_core", corename},
                          {"openblas_coretype", coretype}}
               .dump(2)
        << "\n";
  }
  for (const auto& r : runs) std::remove(r["grads"].get<std::string>().c_str());
  rmdir(tmpl);
  std::printf("\n%s\n", ok ? "all checks passed" : "CHECKS FAILED");
  return ok ? 0 : 1;
}
