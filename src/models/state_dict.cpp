// Python-ordered state dicts and checkpoint loading with BLIP's load_checkpoint semantics.
#include "blip/models/state_dict.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <map>
#include <sstream>

#include "blip/error.h"
#include "blip/models/pos_embed.h"

namespace blip::models {

namespace {

void collect(const torch::nn::Module& module, const std::string& prefix,
             std::vector<StateEntry>& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false))
    if (p.value().defined()) out.push_back({prefix + p.key(), p.value(), false});
  for (const auto& b : module.named_buffers(/*recurse=*/false))
    if (b.value().defined()) out.push_back({prefix + b.key(), b.value(), true});
  for (const auto& child : module.named_children())
    collect(*child.value(), prefix + child.key() + ".", out);
}

// The keys BLIP's load_checkpoint resizes (the online and the momentum ViT).
const char* const kPosEmbedKeys[] = {"visual_encoder.pos_embed", "visual_encoder_m.pos_embed"};

std::string shape_str(at::IntArrayRef s) { return c10::str(s); }

template <typename T, typename F>
void list_line(std::ostringstream& os, const char* label, const std::vector<T>& items, F show) {
  if (items.empty()) return;
  os << "\n  " << label << " (" << items.size() << "):";
  for (size_t i = 0; i < items.size(); ++i) os << (i ? ", " : " ") << show(items[i]);
}

bool has_prefix(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

}  // namespace

std::vector<StateEntry> state_entries(const torch::nn::Module& module) {
  std::vector<StateEntry> out;
  collect(module, "", out);
  return out;
}

io::NamedTensors named_state(const torch::nn::Module& module) {
  io::NamedTensors out;
  for (auto& e : state_entries(module)) out.emplace_back(std::move(e.name), std::move(e.tensor));
  return out;
}

std::string LoadReport::describe() const {
  std::ostringstream os;
  os << source << ": loaded " << loaded << " tensors";
  auto same = [](const std::string& s) { return s; };
  list_line(os, "missing", missing, same);
  list_line(os, "unexpected", unexpected, same);
  list_line(os, "shape mismatch", mismatched, [](const ShapeMismatch& m) {
    return m.name + " (checkpoint " + shape_str(m.checkpoint_shape) + ", model " +
           shape_str(m.model_shape) + ")";
  });
  list_line(os, "ignored", ignored, same);
  list_line(os, "interpolated", interpolated, same);
  return os.str();
}

LoadReport load_weights(torch::nn::Module& module, const io::NamedTensors& state,
                        const LoadOptions& options) {
  LoadReport report;
  report.source = options.source;
  const std::vector<StateEntry> targets = state_entries(module);

  std::map<std::string, at::Tensor> ckpt;
  for (const auto& [name, tensor] : state) {
    if (has_prefix(name, options.ignore_prefixes)) {
      report.ignored.push_back(name);
      continue;
    }
    if (!ckpt.emplace(name, tensor).second) fail(options.source, "duplicate key '" + name + "'");
  }

  std::map<std::string, const StateEntry*> by_name;
  for (const auto& t : targets) by_name[t.name] = &t;

  // BLIP resizes the position embeddings to the model's grid before comparing shapes.
  if (options.interpolate_pos_embed) {
    for (const char* key : kPosEmbedKeys) {
      auto c = ckpt.find(key);
      auto m = by_name.find(key);
      if (c == ckpt.end() || m == by_name.end()) continue;
      const at::Tensor& want = m->second->tensor;
      const at::Tensor& have = c->second;
      if (want.dim() == 3 && have.dim() == 3 && have.size(2) == want.size(2) &&
          have.size(1) != want.size(1)) {
        try {
          c->second = interpolate_pos_embed(have, want.size(1) - 1, 1, key);
        } catch (const Error& e) {
          fail(options.source, e.what());
        }
        report.interpolated.push_back(key);
      }
    }
  }

  std::vector<std::pair<const StateEntry*, at::Tensor>> to_copy;
  for (const auto& t : targets) {
    auto c = ckpt.find(t.name);
    if (c == ckpt.end()) {
      report.missing.push_back(t.name);
      continue;
    }
    const at::Tensor& src = c->second;
    if (!src.defined() || src.sizes() != t.tensor.sizes()) {
      report.mismatched.push_back({t.name, t.tensor.sizes().vec(),
                                   src.defined() ? src.sizes().vec() : std::vector<int64_t>{}});
      continue;
    }
    to_copy.emplace_back(&t, src);
  }
  for (const auto& [name, tensor] : state)
    if (!by_name.count(name) && !has_prefix(name, options.ignore_prefixes))
      report.unexpected.push_back(name);

  if (options.strict && !report.complete()) {
    std::ostringstream os;
    os << "checkpoint does not match the model (strict loading):";
    list_line(os, "missing keys", report.missing, [](const std::string& s) { return s; });
    list_line(os, "unexpected keys", report.unexpected, [](const std::string& s) { return s; });
    list_line(os, "shape mismatches", report.mismatched, [](const ShapeMismatch& m) {
      return m.name + " (checkpoint " + shape_str(m.checkpoint_shape) + ", model " +
             shape_str(m.model_shape) + ")";
    });
    fail(options.source, os.str());
  }

  torch::NoGradGuard no_grad;
  for (const auto& [target, src] : to_copy) {
    try {
      at::Tensor dst = target->tensor;
      dst.copy_(src);
    } catch (const c10::Error& e) {
      fail(options.source, "cannot copy '" + target->name + "': " + e.what_without_backtrace());
    }
    ++report.loaded;
  }
  return report;
}

}  // namespace blip::models
