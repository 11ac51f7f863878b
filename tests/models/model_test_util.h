// Helpers shared by the models tests: the tiny fixture model and numeric comparisons.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <map>
#include <string>

#include "blip/config.h"
#include "blip/io/named_tensors.h"
#include "blip/models/blip_retrieval.h"
#include "common/expect_error.h"

namespace blip::test {

std::string tiny_config_path();   // blip_ref/tiny_config.yaml
std::string tiny_checkpoint_path();  // blip_ref/tiny_checkpoint.pth

// All tensors of a safetensors fixture, by name.
std::map<std::string, at::Tensor> load_fixture(const std::string& path);

// The tiny model of tiny_config.yaml with tiny_checkpoint.pth loaded strictly, in eval mode.
models::BlipRetrieval load_tiny_model();

// Expects |a - e| <= atol + rtol * |e| everywhere (and equal shapes), printing max abs / rel diff.
void expect_close(const std::string& what, const at::Tensor& actual, const at::Tensor& expected,
                  double atol = 1e-4, double rtol = 1e-4);

// Writes `text` to `path` (replacing it).
void write_text(const std::string& path, const std::string& text);


}  // namespace blip::test
