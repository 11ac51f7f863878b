// train_retrieval.py main(): setup, the epoch loop, evaluation, checkpoints and logs.
#include "blip/train/trainer.h"

#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "blip/data/retrieval_dataset.h"
#include "blip/error.h"
#include "blip/eval/report.h"
#include "blip/eval/retrieval_eval.h"
#include "blip/models/factory.h"
#include "blip/retrieval/precision.h"
#include "blip/retrieval/text_tensors.h"
#include "blip/text/tokenizer.h"
#include "blip/train/report_html.h"
#include "blip/train/schedule.h"
#include "blip/train/train_checkpoint.h"
#include "blip/train/train_log.h"
#include "blip/train/train_step.h"
#include "epoch_runner.h"
#include "output_files.h"
#include "train_data.h"

namespace blip::train {

namespace {

void say(const TrainOptions& o, const dist::DistContext& dist, const std::string& line) {
  if (o.log && dist.is_main()) o.log(line);
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Checks that must fail before any compute (the issue of BLIP's mid-training assert, its #101).
void check_config(const RetrievalConfig& config, const TrainOptions& o, const dist::DistContext& dist) {
  const std::string src = config.source.empty() ? "config" : config.source;
  const std::int64_t global_batch = config.batch_size_train * dist.world_size();
  if (!o.evaluate && config.queue_size % global_batch != 0)
    fail(src + ": queue_size",
         std::to_string(config.queue_size) + " is not a multiple of the global batch " +
             std::to_string(global_batch) + " (batch_size_train " +
             std::to_string(config.batch_size_train) + " x " + std::to_string(dist.world_size()) +
             " ranks); BLIP's queue update requires it");
  if (config.tokenizer.empty()) fail(src, "no tokenizer: set `tokenizer` in the config");
  if (o.output_dir.empty()) fail("output directory", "is empty");
  retrieval::check_precision(o.precision, o.device);
  if (o.max_steps < 0) fail("max_steps", "must not be negative");
  if (o.save_every < 0) fail("save_every", "must not be negative");
}

models::BlipRetrieval build_model(const RetrievalConfig& config, const TrainOptions& o,
                                  const dist::DistContext& dist) {
  if (config.pretrained.empty()) {
    say(o, dist, "model: random initialisation (no `pretrained` in the config)");
    return models::make_blip_retrieval(config, /*with_momentum=*/true);
  }
  models::LoadOptions load;
  load.strict = o.strict_pretrained;
  models::LoadReport report;
  auto model = models::load_blip_retrieval(config, "", load, /*with_momentum=*/true, &report);
  say(o, dist, "model: loaded " + std::to_string(report.loaded) + " tensors from " + report.source);
  if (!report.complete()) say(o, dist, report.describe());
  return model;
}

struct EvalSplits {
  data::RetrievalSplit val, test;
};

EvalSplits load_eval_splits(const RetrievalConfig& config) {
  EvalSplits s;
  data::RetrievalSplitSpec spec;
  spec.dataset = config.dataset;
  spec.ann_root = config.ann_root;
  spec.image_root = config.image_root;
  spec.split = "val";
  s.val = data::load_retrieval_split(spec);
  spec.split = "test";
  s.test = data::load_retrieval_split(spec);
  return s;
}

eval::RetrievalEvalOptions eval_options(const RetrievalConfig& config, const TrainOptions& o,
                                        const std::string& label) {
  eval::RetrievalEvalOptions e = eval::eval_options_from_config(config);
  e.device = o.device;
  e.precision = o.precision;
  e.num_workers = o.num_workers;
  e.show_progress = o.show_progress;
  e.label = label;
  return e;
}

eval::RetrievalMetrics evaluate_split(models::BlipRetrievalImpl& model, const text::Tokenizer& tokenizer,
                                      const data::RetrievalSplit& split, const RetrievalConfig& config,
                                      const TrainOptions& o, const dist::DistContext& dist,
                                      const std::string& label) {
  const auto r = eval::evaluate_retrieval(model, tokenizer, split, eval_options(config, o, label), dist);
  return eval::itm_eval(r.score_matrix_i2t, r.score_matrix_t2i, r.split.txt2img, r.split.img2txt);
}

std::string metrics_line(const std::string& name, const eval::RetrievalMetrics& m) {
  return name + ": txt_r1 " + fmt("%.2f", m.txt_r1) + "  img_r1 " + fmt("%.2f", m.img_r1) +
         "  r_mean " + fmt("%.2f", m.r_mean);
}

}  // namespace

TrainResult train_retrieval(const RetrievalConfig& config, const TrainOptions& o,
                            const dist::DistContext& dist) {
  check_config(config, o, dist);
  OutputFiles out(o.output_dir, dist.is_main());  // created and checked writable before compute
  const auto tokenizer = text::load_tokenizer(config.tokenizer);
  retrieval::check_vocabulary_fits(*tokenizer, config.med.vocab_size, config.tokenizer);
  const EvalSplits splits = load_eval_splits(config);
  std::optional<TrainData> train_data;
  if (!o.evaluate) train_data = make_train_data(config, dist, o.seed, o.num_workers);

  at::manual_seed(o.seed + static_cast<std::uint64_t>(dist.rank()));  // BLIP: seed + rank
  models::BlipRetrieval model = build_model(config, o, dist);
  model->to(o.device);
  broadcast_model_state(*model, dist);  // as DDP's constructor
  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(config.init_lr).weight_decay(config.weight_decay));

  TrainResult result;
  RunState run;
  const auto check_queue_pointer = [&](const std::string& source) {
    const std::int64_t global_batch = config.batch_size_train * dist.world_size();
    const std::int64_t ptr = model->ptr_queue[0].item<std::int64_t>();
    if (!o.evaluate && ptr % global_batch != 0)
      fail(source, "its queue pointer ptr_queue = " + std::to_string(ptr) +
                       " is not a multiple of the global batch " + std::to_string(global_batch) +
                       " (the queues were filled with another batch size or rank count); BLIP's "
                       "queue update requires it: train with a global batch that divides " +
                       std::to_string(ptr) + ", or start from a checkpoint without queues");
  };
  check_queue_pointer(config.pretrained.empty() ? std::string("model") : config.pretrained);
  if (!o.resume.empty()) {
    run = resume_from(o.resume, *model, optimizer, dist);
    say(o, dist, "resumed from " + o.resume + " at epoch " + std::to_string(run.state.epoch) + ", step " +
                     std::to_string(run.state.epoch_step) + " of the epoch (" +
                     std::to_string(run.state.global_step) + " in total)");
    check_queue_pointer(o.resume);
  }

  if (o.evaluate) {
    const auto val = evaluate_split(*model, *tokenizer, splits.val, config, o, dist, "val");
    const auto test = evaluate_split(*model, *tokenizer, splits.test, config, o, dist, "test");
    if (dist.is_main()) {
      std::vector<std::pair<std::string, eval::RetrievalMetrics>> rows{{"val", val}, {"test", test}};
      say(o, dist, "\n" + eval::format_metrics_table(rows));
      say(o, dist, "appended to " + out.append_evaluate(rows));
    }
    result.has_val = result.has_test = true;
    result.val = val;
    result.test = test;
    dist.barrier();
    return result;
  }

  out.write_config(config);
  EpochRunner runner(*model, optimizer, *tokenizer, *train_data, config, o, dist);
  result.global_step = run.state.global_step;
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t epoch = run.state.epoch; epoch < config.max_epoch; ++epoch) {
    if (o.max_steps > 0 && run.state.global_step >= o.max_steps) break;
    const double lr = cosine_lr(epoch, config.max_epoch, config.init_lr, config.min_lr);
    const EpochOutcome e = runner.run(epoch, lr, run, out);
    const TrainStats stats = run.meters.global_average(dist);
    say(o, dist, "epoch " + std::to_string(epoch) + ": " + std::to_string(e.steps) + " steps, loss_ita " +
                     fmt("%.4f", stats.loss_ita) + ", loss_itm " + fmt("%.4f", stats.loss_itm) + ", lr " +
                     fmt("%.3g", stats.lr) + ", " + fmt("%.1f", e.images_per_s) + " images/s");

    // Evaluation, as BLIP: val every epoch; test (and checkpoint_best) when val r_mean improves.
    const auto val = evaluate_split(*model, *tokenizer, splits.val, config, o, dist, "val");
    say(o, dist, metrics_line("val", val));
    result.has_val = true;
    result.val = val;
    if (val.r_mean > run.state.best) {
      run.state.best = val.r_mean;
      run.state.best_epoch = epoch;
      run.test = evaluate_split(*model, *tokenizer, splits.test, config, o, dist, "test");
      run.has_test = true;
      say(o, dist, metrics_line("test", *run.test));
      if (dist.is_main()) say(o, dist, "saved " + out.save_best(*model, optimizer, config, epoch));
    }
    // Where the next run continues: the next epoch, unless max_steps cut this one short.
    if (e.completed) {
      run.state.epoch = epoch + 1;
      run.state.epoch_step = 0;
      run.meters = MeterSums{};
    }
    run.history.epochs.push_back(EpochPoint{epoch, run.state.global_step, val, run.has_test,
                                            run.has_test ? *run.test : eval::RetrievalMetrics{}});
    if (dist.is_main()) {
      out.append_log(format_log_line(stats, val, run.test ? &*run.test : nullptr, epoch, run.state.best_epoch));
      out.write_report(run.history, config, o, dist.world_size(),
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    save_last(out, *model, optimizer, config, run, dist);
    ++result.epochs_done;
    if (!e.completed) break;
  }
  result.global_step = run.state.global_step;
  result.best = run.state.best;
  result.best_epoch = run.state.best_epoch;
  result.has_test = run.has_test;
  if (run.test) result.test = *run.test;
  dist.barrier();
  return result;
}

}  // namespace blip::train
