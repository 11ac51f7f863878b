// Loading a checkpoint file into a freshly built retrieval model.
#include <cstdint>
#include <limits>

#include "blip/error.h"
#include "blip/io/checkpoint.h"
#include "blip/models/factory.h"
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
  BlipRetrieval model = make_blip_retrieval(config, with_momentum);
  const io::NamedTensors state = io::load_model_tensors(path);
  LoadReport r = load_weights(*model, state, options);
  if (report) *report = std::move(r);
  return model;
}

}  // namespace blip::models
