#include "image/image_fixtures.h"

#include "blip/io/safetensors.h"
#include "common/fixtures.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace blip::test {

std::vector<RefImage> reference_images() {
  const std::string dir = blip_ref_dir();
  std::ifstream in(dir + "/preprocess.json");
  if (!in) throw std::runtime_error("cannot open " + dir + "/preprocess.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  std::vector<RefImage> images;
  for (const auto& e : j.at("images")) {
    RefImage r;
    r.stem = e.at("stem").get<std::string>();
    r.path = dir + "/" + e.at("file").get<std::string>();
    if (!e.at("decoded_rgb_png").is_null())
      r.decoded_path = dir + "/" + e.at("decoded_rgb_png").get<std::string>();
    r.float_384_stored = e.at("float_384_stored").get<bool>();
    images.push_back(r);
  }
  return images;
}

const io::NamedTensors& preprocess_tensors() {
  static const io::NamedTensors tensors =
      io::load_safetensors(blip_ref_dir() + "/preprocess.safetensors");
  return tensors;
}

at::Tensor find_tensor(const io::NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  ADD_FAILURE() << "tensor '" << name << "' not found";
  throw std::runtime_error("missing tensor " + name);
}

image::ImageU8 image_from_hwc(const at::Tensor& hwc) {
  EXPECT_EQ(hwc.scalar_type(), at::kByte);
  EXPECT_EQ(hwc.dim(), 3);
  EXPECT_EQ(hwc.size(2), 3);
  const at::Tensor c = hwc.contiguous();
  image::ImageU8 img(static_cast<int>(c.size(1)), static_cast<int>(c.size(0)));
  std::memcpy(img.pixels.data(), c.data_ptr<std::uint8_t>(), img.pixels.size());
  return img;
}

at::Tensor hwc_from_image(const image::ImageU8& image) {
  at::Tensor t = at::empty({image.height, image.width, 3}, at::kByte);
  std::memcpy(t.data_ptr<std::uint8_t>(), image.pixels.data(), image.pixels.size());
  return t;
}

ByteDiff compare_images(const image::ImageU8& a, const image::ImageU8& b) {
  ByteDiff d;
  if (a.width != b.width || a.height != b.height) {
    ADD_FAILURE() << "size " << a.width << "x" << a.height << " vs " << b.width << "x" << b.height;
    d.count = -1;
    return d;
  }
  for (std::size_t i = 0; i < a.pixels.size(); ++i) {
    const int diff = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    if (diff) {
      ++d.count;
      if (diff > d.max_abs) d.max_abs = diff;
    }
  }
  return d;
}

}  // namespace blip::test
