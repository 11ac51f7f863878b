// Helpers shared by the checkpoint tests: the tiny fixture model, deep comparison of unpickled
// values, and running a Python script with torch.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "blip/config.h"
#include "blip/io/pickle_value.h"
#include "blip/models/factory.h"
#include "common/fixtures.h"
#include "common/run_command.h"

namespace blip::test {

inline std::string tiny_yaml() { return blip_ref_dir() + "/tiny_config.yaml"; }
inline std::string tiny_pth() { return blip_ref_dir() + "/tiny_checkpoint.pth"; }

// BLIP's optimizer for the tiny fixture: AdamW(model.parameters(), lr=1e-4, weight_decay=0.05).
inline torch::optim::AdamWOptions tiny_adamw_options() {
  return torch::optim::AdamWOptions(1e-4).weight_decay(0.05);
}

// Counts what compare_values looked at, so tests can check the walk was not empty.
struct CompareCounts {
  size_t tensors = 0;
  size_t scalars = 0;
};

// Expects `a` and `b` to be the same Python value: same kinds (int vs float vs bool kept
// apart), dict keys in the same order with the same OrderedDict-ness, tensors of the same dtype
// and shape with bit-identical values, floats exactly equal.
inline void compare_values(const io::pickle::Value& a, const io::pickle::Value& b,
                           const std::string& where, CompareCounts* counts = nullptr) {
  using Kind = io::pickle::Value::Kind;
  ASSERT_EQ(a.kind(), b.kind()) << where << ": " << a.type_name() << " vs " << b.type_name();
  switch (a.kind()) {
    case Kind::None:
      break;
    case Kind::Bool:
      EXPECT_EQ(a.as_bool(), b.as_bool()) << where;
      break;
    case Kind::Int:
      EXPECT_EQ(a.as_int(), b.as_int()) << where;
      break;
    case Kind::Float:
      EXPECT_EQ(a.as_double(), b.as_double()) << where;
      break;
    case Kind::String:
      EXPECT_EQ(a.as_string(), b.as_string()) << where;
      break;
    case Kind::Bytes:
      EXPECT_EQ(a.as_bytes(), b.as_bytes()) << where;
      break;
    case Kind::Tuple:
    case Kind::List: {
      ASSERT_EQ(a.items().size(), b.items().size()) << where;
      for (size_t i = 0; i < a.items().size(); ++i)
        compare_values(a.items()[i], b.items()[i], where + "[" + std::to_string(i) + "]", counts);
      break;
    }
    case Kind::Dict: {
      const auto& da = a.as_dict();
      const auto& db = b.as_dict();
      EXPECT_EQ(da.ordered, db.ordered) << where;
      ASSERT_EQ(da.size(), db.size()) << where;
      for (size_t i = 0; i < da.size(); ++i) {
        const std::string key = io::pickle::repr(da.items()[i].first);
        compare_values(da.items()[i].first, db.items()[i].first,
                       where + " key #" + std::to_string(i), counts);
        compare_values(da.items()[i].second, db.items()[i].second, where + "[" + key + "]", counts);
      }
      break;
    }
    case Kind::Tensor: {
      const at::Tensor& ta = a.as_tensor();
      const at::Tensor& tb = b.as_tensor();
      ASSERT_EQ(ta.scalar_type(), tb.scalar_type()) << where;
      ASSERT_EQ(ta.sizes(), tb.sizes()) << where;
      EXPECT_TRUE(at::equal(ta, tb)) << where;
      if (counts) ++counts->tensors;
      return;
    }
    default:
      FAIL() << where << ": unexpected kind " << a.type_name();
  }
  if (counts && a.kind() != Kind::Dict && a.kind() != Kind::List && a.kind() != Kind::Tuple)
    ++counts->scalars;
}

inline bool python_torch_available() {
  return std::system("/usr/bin/python3 -c 'import torch, yaml' >/dev/null 2>&1") == 0;
}

// Writes `script` to a file in `dir` and runs it with /usr/bin/python3 and `args`.
inline CommandResult run_python(const std::string& dir, const std::string& script,
                                const std::string& args) {
  const std::string path = dir + "/script.py";
  std::ofstream(path) << script;
  return run_command("/usr/bin/python3 " + quote(path) + " " + args);
}

}  // namespace blip::test
