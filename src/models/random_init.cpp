#include "blip/models/random_init.h"

namespace blip::models {

namespace {
thread_local bool t_random_init = true;
}

NoRandomInit::NoRandomInit() : previous_(t_random_init) { t_random_init = false; }
NoRandomInit::~NoRandomInit() { t_random_init = previous_; }

bool random_init_enabled() { return t_random_init; }

}  // namespace blip::models
