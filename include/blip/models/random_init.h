// Skipping the random initialisation of a model whose every weight a checkpoint will overwrite.
// While a NoRandomInit guard lives, the models' constructors leave their random parameters
// uninitialised (deterministic values such as LayerNorm's ones and the position ids are still
// set). load_blip_retrieval uses it and falls back to a fully initialised model when the
// checkpoint does not cover every parameter.
#pragma once

namespace blip::models {

class NoRandomInit {
 public:
  NoRandomInit();
  ~NoRandomInit();
  NoRandomInit(const NoRandomInit&) = delete;
  NoRandomInit& operator=(const NoRandomInit&) = delete;

 private:
  bool previous_;
};

// False while a NoRandomInit guard is active on the calling thread.
bool random_init_enabled();

}  // namespace blip::models
