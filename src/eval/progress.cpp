#include "blip/eval/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

namespace blip::eval {
namespace {

constexpr int kBarWidth = 20;

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  return buf;
}

std::string format_rate(double per_second) {
  char buf[32];
  if (per_second >= 1.0 || per_second == 0.0)
    std::snprintf(buf, sizeof buf, "%.1f it/s", per_second);
  else
    std::snprintf(buf, sizeof buf, "%.1f s/it", 1.0 / per_second);
  return buf;
}

}  // namespace

bool progress_enabled(bool quiet) { return !quiet && ::isatty(STDERR_FILENO) == 1; }

std::string format_progress_line(const std::string& stage, std::int64_t done, std::int64_t total,
                                 double elapsed_s) {
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
  char counts[64];
  if (total <= 0) {
    std::snprintf(counts, sizeof counts, "%lld items", static_cast<long long>(done));
    return stage + "  " + counts + "  " + format_rate(rate) + "  " + format_duration(elapsed_s);
  }
  const std::int64_t shown = std::min(done, total);
  const int filled = static_cast<int>(kBarWidth * shown / total);
  std::string bar = "[" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "]";
  const int width = static_cast<int>(std::to_string(total).size());
  std::snprintf(counts, sizeof counts, "%*lld/%lld", width, static_cast<long long>(shown),
                static_cast<long long>(total));
  const double eta = rate > 0 ? static_cast<double>(total - shown) / rate : NAN;
  const std::string timing = shown >= total ? "in " + format_duration(elapsed_s)
                                            : "ETA " + format_duration(eta);
  return stage + "  " + bar + " " + counts + "  " + format_rate(rate) + "  " + timing;
}

ProgressBar::ProgressBar(std::string stage, std::int64_t total, bool enabled)
    : ProgressBar(std::move(stage), total, enabled, std::cerr) {}

ProgressBar::ProgressBar(std::string stage, std::int64_t total, bool enabled, std::ostream& out)
    : stage_(std::move(stage)),
      total_(total),
      enabled_(enabled),
      out_(&out),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  if (enabled_) {
    std::lock_guard<std::mutex> lock(mutex_);
    draw(false);
  }
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::advance(std::int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += n;
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ >= kRedrawInterval) draw(false);
}

void ProgressBar::set_suffix(std::string suffix) {
  std::lock_guard<std::mutex> lock(mutex_);
  suffix_ = std::move(suffix);
}

void ProgressBar::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

std::int64_t ProgressBar::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

void ProgressBar::draw(bool final_line) {
  const auto now = std::chrono::steady_clock::now();
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string line = format_progress_line(stage_, done_, total_, elapsed);
  if (!suffix_.empty()) line += "  " + suffix_;
  const std::size_t width = line.size();
  // Blank out what a longer previous line left behind.
  if (width < last_width_) line += std::string(last_width_ - width, ' ');
  last_width_ = width;
  *out_ << '\r' << line;
  if (final_line) *out_ << '\n';
  out_->flush();
}

}  // namespace blip::eval
