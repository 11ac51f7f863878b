// VitConfig presets (models/blip.py create_vit) and the ViT configs a RetrievalConfig implies.
#include "blip/config.h"

namespace blip {

namespace {
constexpr int64_t kBlipPatchSize = 16;
constexpr double kLargeDropPathRate = 0.1;  // create_vit: `drop_path_rate=0.1 or drop_path_rate`
}  // namespace

VitConfig VitConfig::base(int64_t image_size) {
  VitConfig c;
  c.image_size = image_size;
  c.patch_size = kBlipPatchSize;
  c.width = 768;
  c.depth = 12;
  c.heads = 12;
  return c;
}

VitConfig VitConfig::large(int64_t image_size) {
  VitConfig c;
  c.image_size = image_size;
  c.patch_size = kBlipPatchSize;
  c.width = 1024;
  c.depth = 24;
  c.heads = 16;
  c.drop_path_rate = kLargeDropPathRate;
  return c;
}

VitConfig RetrievalConfig::vit_m_config() const {
  VitConfig c;
  if (vit == "large") {
    c = VitConfig::large(image_size);
  } else if (vit == "custom") {
    c.image_size = image_size;
    c.patch_size = vit_patch_size;
    c.width = vit_width;
    c.depth = vit_depth;
    c.heads = vit_heads;
  } else {
    c = VitConfig::base(image_size);
  }
  return c;
}

VitConfig RetrievalConfig::vit_config() const {
  VitConfig c = vit_m_config();
  c.grad_ckpt = vit_grad_ckpt;
  c.ckpt_layer = vit_ckpt_layer;
  return c;
}

bool is_url(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

}  // namespace blip
