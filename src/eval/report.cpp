#include "blip/eval/report.h"

#include "blip/error.h"
#include "blip/io/safetensors.h"

#include <ATen/ATen.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace blip::eval {
namespace {

// Python's float repr switches to exponent notation outside 1e-4 <= |x| < 1e16
// (format_float_short with mode 'r': decpt <= -4 or decpt > 16).
constexpr int kReprMinDecimalPoint = -4;
constexpr int kReprMaxDecimalPoint = 16;

void ensure_directory(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) fail(dir, "cannot create the output directory: " + ec.message());
}

std::string shape_str(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

}  // namespace

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";

  // Shortest round-trip digits, as Python's repr (David Gay's algorithm, mode 0) chooses them.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);  // e.g. "-3.3333333333333336e+01"
  const std::size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exponent = std::stoi(sci.substr(e + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  // value = 0.<digits> * 10^decpt
  const int decpt = exponent + 1;
  const int n = static_cast<int>(digits.size());

  std::string out = negative ? "-" : "";
  if (decpt <= kReprMinDecimalPoint || decpt > kReprMaxDecimalPoint) {
    out += digits.substr(0, 1);
    if (n > 1) out += "." + digits.substr(1);
    const int x = decpt - 1;
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", x < 0 ? '-' : '+', std::abs(x));
    return out + exp_buf;
  }
  if (decpt <= 0) return out + "0." + std::string(-decpt, '0') + digits;
  if (decpt >= n) return out + digits + std::string(decpt - n, '0') + ".0";
  return out + digits.substr(0, decpt) + "." + digits.substr(decpt);
}

std::string evaluate_log_line(const std::vector<std::pair<std::string, RetrievalMetrics>>& splits) {
  std::string line = "{";
  bool first = true;
  for (const auto& [split, metrics] : splits) {
    for (const auto& [key, value] : metrics.items()) {
      if (!first) line += ", ";
      first = false;
      line += "\"" + split + "_" + key + "\": " + python_float_repr(value);
    }
  }
  return line + "}";
}

std::string append_evaluate_log(const std::string& output_dir,
                                const std::vector<std::pair<std::string, RetrievalMetrics>>& splits) {
  ensure_directory(output_dir);
  const std::string path = (fs::path(output_dir) / "evaluate.txt").string();
  std::ofstream out(path, std::ios::app | std::ios::binary);
  if (!out) fail(path, "cannot open for appending");
  out << evaluate_log_line(splits) << "\n";
  out.flush();
  if (!out) fail(path, "write error");
  return path;
}

std::string format_metrics_table(const std::vector<std::pair<std::string, RetrievalMetrics>>& splits) {
  const auto keys = RetrievalMetrics{}.items();
  std::size_t split_width = 5;
  for (const auto& s : splits) split_width = std::max(split_width, s.first.size());
  std::ostringstream os;
  char cell[64];
  std::snprintf(cell, sizeof cell, "%-*s", static_cast<int>(split_width), "split");
  os << cell;
  for (const auto& [key, unused] : keys) {
    std::snprintf(cell, sizeof cell, "  %10s", key.c_str());
    os << cell;
  }
  os << "\n";
  for (const auto& [split, metrics] : splits) {
    std::snprintf(cell, sizeof cell, "%-*s", static_cast<int>(split_width), split.c_str());
    os << cell;
    for (const auto& [key, value] : metrics.items()) {
      std::snprintf(cell, sizeof cell, "  %10.2f", value);
      os << cell;
    }
    os << "\n";
  }
  return os.str();
}

std::string save_score_matrices(const std::string& output_dir, const std::string& split,
                                const at::Tensor& score_matrix_i2t,
                                const at::Tensor& score_matrix_t2i) {
  const std::string path = (fs::path(output_dir) / ("scores_" + split + ".safetensors")).string();
  if (!score_matrix_i2t.defined() || !score_matrix_t2i.defined() || score_matrix_i2t.dim() != 2 ||
      score_matrix_t2i.dim() != 2 || score_matrix_i2t.size(0) != score_matrix_t2i.size(1) ||
      score_matrix_i2t.size(1) != score_matrix_t2i.size(0))
    fail(path, "score matrices must be [images, texts] and [texts, images], got " +
                   (score_matrix_i2t.defined() ? shape_str(score_matrix_i2t) : "undefined") +
                   " and " +
                   (score_matrix_t2i.defined() ? shape_str(score_matrix_t2i) : "undefined"));
  ensure_directory(output_dir);
  blip::io::save_safetensors(
      path, {{"score_matrix_i2t", score_matrix_i2t.detach().to(at::kCPU, at::kFloat).contiguous()},
             {"score_matrix_t2i", score_matrix_t2i.detach().to(at::kCPU, at::kFloat).contiguous()}});
  return path;
}

}  // namespace blip::eval
