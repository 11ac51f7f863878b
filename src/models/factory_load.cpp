// Loading a checkpoint file into a freshly built retrieval model.
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>
#include <limits>
#include <mutex>

#include "blip/error.h"
#include "blip/io/checkpoint.h"
#include "blip/models/factory.h"
#include "blip/models/random_init.h"
#include "core/regular_file.h"

namespace blip::models {

BlipRetrieval load_blip_retrieval(const RetrievalConfig& config, const std::string& checkpoint_path,
                                  LoadOptions options, bool with_momentum, LoadReport* report) {
  const std::string path = checkpoint_path.empty() ? config.pretrained : checkpoint_path;
  const std::string what = config.source.empty() ? std::string("retrieval config") : config.source;
  if (path.empty()) fail(what, "no checkpoint given (set 'pretrained')");
  if (is_url(path))
    fail(path, "checkpoint URLs are not downloaded by libblip; download the file "
               "(scripts/download_blip.sh) and set 'pretrained' to its local path");
  files::require_regular_file(path, std::numeric_limits<std::uint64_t>::max(), "checkpoint file");
  if (options.source.empty() || options.source == "checkpoint") options.source = path;
  if (!with_momentum)
    options.ignore_prefixes.insert(options.ignore_prefixes.end(), momentum_state_prefixes().begin(),
                                   momentum_state_prefixes().end());
  const io::NamedTensors state = io::load_model_tensors(path);
  // Built without BLIP's random initialisation, which the checkpoint overwrites (drawing the
  // random numbers took most of the load). A checkpoint that lacks some parameter, or holds it in
  // another shape, gets a fully initialised model instead, so what it lacks keeps BLIP's init.
  // The random generator is left as it was, so that the fallback builds what
  // make_blip_retrieval would have built, and loading does not shift later random draws (torch's
  // own Embedding and Conv2d still draw their init).
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  const at::Tensor generator_state = [&] {
    std::lock_guard<std::mutex> lock(generator.mutex());
    return generator.get_state();
  }();
  BlipRetrieval model{nullptr};
  {
    NoRandomInit no_init;
    model = make_blip_retrieval(config, with_momentum);
  }
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(generator_state);
  }
  LoadReport r = load_weights(*model, state, options);
  if (!r.missing.empty() || !r.mismatched.empty()) {
    model = make_blip_retrieval(config, with_momentum);
    r = load_weights(*model, state, options);
  }
  if (report) *report = std::move(r);
  return model;
}

}  // namespace blip::models
