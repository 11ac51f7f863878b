#include "run_state.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <mutex>

#include "blip/error.h"
#include "output_files.h"

namespace blip::train {

namespace {

// The opaque JSON a checkpoint carries for us besides TrainState's fields.
constexpr const char* kHistoryKey = "report";
constexpr const char* kMetersKey = "meters";
constexpr const char* kTestKey = "best_test";

nlohmann::json metrics_json(const eval::RetrievalMetrics& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m.items()) j[k] = v;
  return j;
}

eval::RetrievalMetrics metrics_from(const nlohmann::json& j) {
  eval::RetrievalMetrics m;
  m.txt_r1 = j.at("txt_r1"), m.txt_r5 = j.at("txt_r5"), m.txt_r10 = j.at("txt_r10");
  m.txt_r_mean = j.at("txt_r_mean"), m.img_r1 = j.at("img_r1"), m.img_r5 = j.at("img_r5");
  m.img_r10 = j.at("img_r10"), m.img_r_mean = j.at("img_r_mean"), m.r_mean = j.at("r_mean");
  return m;
}

at::Generator cpu_generator() { return at::detail::getDefaultCPUGenerator(); }

}  // namespace

void MeterSums::add(double itm, double ita, double step_lr) {
  loss_itm += itm;
  loss_ita += ita;
  lr += step_lr;
  ++count;
}

TrainStats MeterSums::global_average(const dist::DistContext& dist) const {
  at::Tensor sums = at::tensor({loss_itm, loss_ita, lr, static_cast<double>(count)}, at::kDouble);
  dist.all_reduce_sum(sums);
  TrainStats s;
  const double n = sums[3].item<double>();
  if (n > 0) {
    s.loss_itm = sums[0].item<double>() / n;
    s.loss_ita = sums[1].item<double>() / n;
    s.lr = sums[2].item<double>() / n;
  }
  return s;
}

RunState resume_from(const std::string& path, models::BlipRetrievalImpl& model,
                     torch::optim::AdamW& optimizer, const dist::DistContext& dist) {
  RunState run;
  const LoadedTrainCheckpoint loaded = load_train_checkpoint(path, model, optimizer);
  run.state = loaded.state;
  if (!loaded.has_train_state) {
    // A BLIP checkpoint: {'epoch': n} is the last finished epoch.
    run.state.epoch += 1;
    run.state.epoch_step = 0;
    return run;
  }
  if (run.state.world_size != dist.world_size())
    fail(path, "was written by a run of " + std::to_string(run.state.world_size) +
                   " rank(s); resume it with the same number of ranks (this run has " +
                   std::to_string(dist.world_size()) + ")");
  const nlohmann::json& h = run.state.history;
  if (h.contains(kHistoryKey)) run.history = TrainHistory::from_json(h.at(kHistoryKey));
  if (h.contains(kMetersKey)) {
    const auto& m = h.at(kMetersKey);
    run.meters.loss_itm = m.at("loss_itm"), run.meters.loss_ita = m.at("loss_ita");
    run.meters.lr = m.at("lr"), run.meters.count = m.at("count");
  }
  if (h.contains(kTestKey) && !h.at(kTestKey).is_null()) {
    run.test = metrics_from(h.at(kTestKey));
    run.has_test = true;
  }
  // This rank's part of the generator states (every rank's, concatenated in rank order).
  const at::Tensor& states = run.state.torch_rng_state;
  if (states.defined()) {
    if (states.numel() % dist.world_size() != 0)
      fail(path, "holds generator states of an unexpected size " + std::to_string(states.numel()));
    const std::int64_t per_rank = states.numel() / dist.world_size();
    at::Generator gen = cpu_generator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(states.narrow(0, dist.rank() * per_rank, per_rank).contiguous());
  }
  return run;
}

void save_last(OutputFiles& out, const models::BlipRetrievalImpl& model,
               const torch::optim::AdamW& optimizer, const RetrievalConfig& config, RunState& run,
               const dist::DistContext& dist) {
  at::Tensor mine;
  {
    at::Generator gen = cpu_generator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    mine = gen.get_state();
  }
  run.state.torch_rng_state = dist.all_gather(mine);  // every rank's state bytes, rank order
  run.state.world_size = dist.world_size();
  nlohmann::json h = nlohmann::json::object();
  h[kHistoryKey] = run.history.to_json();
  h[kMetersKey] = {{"loss_itm", run.meters.loss_itm}, {"loss_ita", run.meters.loss_ita},
                   {"lr", run.meters.lr}, {"count", run.meters.count}};
  h[kTestKey] = run.test ? metrics_json(*run.test) : nlohmann::json();
  run.state.history = h;
  if (dist.is_main()) out.save_last(model, optimizer, config, run.state);
  dist.barrier();  // no rank runs ahead of a checkpoint that may be resumed
}

}  // namespace blip::train
