#include "output_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "blip/error.h"
#include "blip/eval/report.h"
#include "blip/eval/retrieval_eval.h"
#include "blip/io/atomic_write.h"
#include "blip/train/train_log.h"
#include "blip/train/trainer.h"

namespace blip::train {

namespace fs = std::filesystem;

OutputFiles::OutputFiles(std::string dir, bool main_rank) : dir_(std::move(dir)), main_(main_rank) {
  if (!main_) return;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) fail("output directory " + dir_, "cannot be created: " + ec.message());
  if (!fs::is_directory(dir_)) fail("output directory " + dir_, "is not a directory");
  // Probe: an exclusive temporary file, removed at once.
  const std::string probe = (fs::path(dir_) / ".blip_write_probe.XXXXXX").string();
  std::vector<char> name(probe.begin(), probe.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) fail("output directory " + dir_, std::string("is not writable: ") + std::strerror(errno));
  ::close(fd);
  ::unlink(name.data());
}

std::string OutputFiles::path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

void OutputFiles::write_config(const RetrievalConfig& config) const {
  if (main_) io::write_file_atomic(path(kConfigFile), config_yaml(config));
}

void OutputFiles::append_log(const std::string& line) const {
  if (main_) append_log_line(dir_, line);
}

std::string OutputFiles::append_evaluate(
    const std::vector<std::pair<std::string, eval::RetrievalMetrics>>& rows) const {
  return eval::append_evaluate_log(dir_, rows);
}

void OutputFiles::write_report(const TrainHistory& history, const RetrievalConfig& config,
                               const TrainOptions& o, int world_size, double elapsed_s) const {
  if (!main_) return;
  ReportInfo info;
  info.title = "BLIP retrieval fine-tuning: " + fs::path(dir_).filename().string();
  info.config_path = config.source;
  info.dataset = config.dataset;
  info.precision = retrieval::precision_name(o.precision);
  info.device = o.device.str();
  info.world_size = world_size;
  info.elapsed_s = elapsed_s;
  info.extra = {{"vit", config.vit},
                {"image_size", std::to_string(config.image_size)},
                {"batch_size_train", std::to_string(config.batch_size_train)},
                {"max_epoch", std::to_string(config.max_epoch)},
                {"init_lr", std::to_string(config.init_lr)},
                {"queue_size", std::to_string(config.queue_size)}};
  write_report_html(path(kReportFile), history, info);
}

std::string OutputFiles::save_best(const models::BlipRetrievalImpl& model, const torch::optim::AdamW& optimizer,
                                   const RetrievalConfig& config, std::int64_t epoch) const {
  const std::string p = path(kBestCheckpoint);
  save_blip_checkpoint(p, model, optimizer, config, epoch);
  return p;
}

std::string OutputFiles::save_last(const models::BlipRetrievalImpl& model, const torch::optim::AdamW& optimizer,
                                   const RetrievalConfig& config, const TrainState& state) const {
  const std::string p = path(kLastCheckpoint);
  save_train_checkpoint(p, model, optimizer, config, state);
  return p;
}

}  // namespace blip::train
