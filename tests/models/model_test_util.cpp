#include "model_test_util.h"

#include <fstream>
#include <iomanip>
#include <iostream>

#include "blip/error.h"
#include "blip/io/safetensors.h"
#include "blip/models/factory.h"
#include "common/fixtures.h"
#include "common/tensor_expect.h"

namespace blip::test {

std::string tiny_config_path() { return blip_ref_dir() + "/tiny_config.yaml"; }
std::string tiny_checkpoint_path() { return blip_ref_dir() + "/tiny_checkpoint.pth"; }

std::map<std::string, at::Tensor> load_fixture(const std::string& path) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : io::load_safetensors(path)) out[name] = t;
  return out;
}

models::BlipRetrieval load_tiny_model() {
  const RetrievalConfig config = load_retrieval_config(tiny_config_path());
  models::BlipRetrieval model = models::load_blip_retrieval(config, tiny_checkpoint_path());
  model->eval();
  return model;
}

void expect_close(const std::string& what, const at::Tensor& actual, const at::Tensor& expected,
                  double atol, double rtol) {
  expect_tensor_close(what, actual, expected, atol, rtol);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace blip::test
