// Building the retrieval model from a RetrievalConfig.
#include "blip/models/factory.h"

namespace blip::models {

BlipRetrieval make_blip_retrieval(const RetrievalConfig& config, bool with_momentum) {
  validate(config);
  BlipRetrievalSpec spec = BlipRetrievalSpec::from_config(config);
  spec.with_momentum = with_momentum;
  return BlipRetrieval(spec);
}

}  // namespace blip::models
