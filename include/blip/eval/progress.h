// A one-line progress bar on stderr for the evaluation stages (text features, image features,
// i2t / t2i reranking): stage name, count/total, rate and ETA, redrawn in place with '\r'.
// Disabled when stderr is not a terminal (logs and pipes stay clean) or when the user asks for
// --quiet; a disabled bar costs nothing and prints nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <string>

namespace blip::eval {

// True when stderr is a terminal and quiet is false: the default for ProgressBar's `enabled`.
bool progress_enabled(bool quiet);

// The bar's text for `done` of `total` after `elapsed_s` seconds, without '\r' or padding, e.g.
// "image features  [#######.............]   36/100  12.0 it/s  ETA 00:05".
// total <= 0 gives an open-ended count ("36 items  12.0 it/s").
std::string format_progress_line(const std::string& stage, std::int64_t done, std::int64_t total,
                                 double elapsed_s);

class ProgressBar {
 public:
  // Draws to stderr when enabled.
  ProgressBar(std::string stage, std::int64_t total, bool enabled);
  // Draws to `out` when enabled (tests).
  ProgressBar(std::string stage, std::int64_t total, bool enabled, std::ostream& out);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Counts n more items done; thread-safe. Redraws at most every kRedrawInterval.
  void advance(std::int64_t n = 1);
  // Text drawn after the counts (e.g. "loss 1.23  lr 1.0e-05"); thread-safe.
  void set_suffix(std::string suffix);
  // Draws the final state and ends the line (once; the destructor calls it too).
  void finish();

  std::int64_t done() const;
  bool enabled() const { return enabled_; }

  static constexpr std::chrono::milliseconds kRedrawInterval{100};

 private:
  void draw(bool final_line);

  std::string stage_;
  std::int64_t total_;
  bool enabled_;
  std::ostream* out_;
  mutable std::mutex mutex_;
  std::int64_t done_ = 0;
  std::string suffix_;
  bool finished_ = false;
  std::size_t last_width_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace blip::eval
