// One image load on a loader thread: whatever the load function throws becomes a message that
// names the file, so the consumer can rethrow it on its own thread (both batch loaders).
#pragma once

#include <ATen/core/Tensor.h>

#include <exception>
#include <string>
#include <utility>

namespace blip::data::detail {

struct LoadOutcome {
  at::Tensor image;
  std::string error;  // non-empty when loading failed; always names the file
};

template <class Load>
LoadOutcome guarded_load(const std::string& path, Load&& load) {
  LoadOutcome out;
  try {
    out.image = std::forward<Load>(load)();
    if (!out.image.defined()) out.error = path + ": the image loader returned no tensor";
  } catch (const std::exception& e) {
    out.error = e.what();
  } catch (...) {
    out.error = path + ": unknown error while loading the image";
  }
  if (!out.error.empty() && out.error.find(path) == std::string::npos) out.error = path + ": " + out.error;
  return out;
}

}  // namespace blip::data::detail
