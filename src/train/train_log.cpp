#include "blip/train/train_log.h"

#include "blip/error.h"
#include "blip/eval/report.h"
#include "blip/io/atomic_write.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace blip::train {
namespace {

constexpr const char* kLogFileName = "log.txt";

void append_json_key(std::string& line, const std::string& key) {
  if (line.size() > 1) line += ", ";  // json.dumps' default item separator
  line += "\"" + key + "\": ";
}

}  // namespace

void AverageMeter::add(double value, std::int64_t n) {
  total += value * static_cast<double>(n);
  count += n;
}

double AverageMeter::global_avg() const {
  if (count == 0) return std::numeric_limits<double>::quiet_NaN();
  return total / static_cast<double>(count);
}

std::string format_fixed3(double value) {
  // Python prints "nan" whatever the sign bit; glibc would print "-nan".
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // Both Python and glibc round the exact binary value correctly (ties to even), so "%.3f"
  // matches "{:.3f}" digit for digit, including "-0.000".
  char buf[512];  // %.3f of DBL_MAX needs 313 characters
  std::snprintf(buf, sizeof buf, "%.3f", value);
  return buf;
}

std::string format_log_line(const TrainStats& train, const eval::RetrievalMetrics& val,
                            const eval::RetrievalMetrics& test, std::int64_t epoch,
                            std::int64_t best_epoch) {
  return format_log_line(train, val, &test, epoch, best_epoch);
}

std::string format_log_line(const TrainStats& train, const eval::RetrievalMetrics& val,
                            const eval::RetrievalMetrics* test, std::int64_t epoch,
                            std::int64_t best_epoch) {
  // The train values are the strings BLIP's train() returns; json.dumps quotes them.
  const std::vector<std::pair<std::string, double>> train_items = {
      {"lr", train.lr}, {"loss_itm", train.loss_itm}, {"loss_ita", train.loss_ita}};
  std::string line = "{";
  for (const auto& [key, value] : train_items) {
    append_json_key(line, "train_" + key);
    line += "\"" + format_fixed3(value) + "\"";
  }
  for (const auto& [prefix, metrics] : {std::make_pair("val_", &val), std::make_pair("test_", test)}) {
    if (metrics == nullptr) continue;
    for (const auto& [key, value] : metrics->items()) {
      append_json_key(line, prefix + key);
      line += eval::python_float_repr(value);
    }
  }
  append_json_key(line, "epoch");
  line += std::to_string(epoch);
  append_json_key(line, "best_epoch");
  line += std::to_string(best_epoch);
  return line + "}";
}

std::string append_log_line(const std::string& output_dir, const std::string& line) {
  const std::string path = (fs::path(output_dir) / kLogFileName).string();
  if (line.find_first_of("\r\n") != std::string::npos)
    fail(path, "a log line must not contain a line break");
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  if (ec || !fs::is_directory(output_dir))
    fail(output_dir, "cannot create the output directory: " + ec.message());
  std::string contents = io::read_file_if_exists(path);
  contents += line;
  contents += '\n';
  io::write_file_atomic(path, contents);
  return path;
}

}  // namespace blip::train
