// Building BLIP's retrieval model from a RetrievalConfig and loading a checkpoint into it.
#pragma once

#include <string>

#include "blip/config.h"
#include "blip/models/blip_retrieval.h"
#include "blip/models/state_dict.h"

namespace blip::models {

// BLIP_Retrieval(med_config, image_size, vit, vit_grad_ckpt, vit_ckpt_layer, embed_dim,
// queue_size, momentum), randomly initialised as BLIP does. with_momentum = false leaves out the
// momentum encoders and queues (inference only). The model is in training mode, as torch builds it.
BlipRetrieval make_blip_retrieval(const RetrievalConfig& config, bool with_momentum = true);

// make_blip_retrieval + the weights of `checkpoint_path` (config.pretrained when empty), read with
// blip::io::load_model_tensors (a BLIP .pth, or .safetensors). options.source defaults to the
// path. When with_momentum is false, the checkpoint's momentum/queue keys are ignored.
// A URL or a missing file throws blip::Error. `report` (optional) receives what was loaded.
BlipRetrieval load_blip_retrieval(const RetrievalConfig& config,
                                  const std::string& checkpoint_path = "",
                                  LoadOptions options = {}, bool with_momentum = true,
                                  LoadReport* report = nullptr);

}  // namespace blip::models
