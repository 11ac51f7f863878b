// Where a stage's time goes: every outermost ATen operator called while an OpProfile is active
// is timed (ATen's RecordFunction callbacks, the same hook torch.profiler uses, available in
// LibTorch 1.13 and 2.x) and grouped by what it computes: each Linear by its shape, the batched
// matrix products of attention, and the memory-bound rest by operator name. (LibTorch 1.13's
// Linear on 3-D input records as aten::matmul with the transposed [K, N] weight.) Matrix products get
// their FLOPs from the operand shapes, so each group's GFLOP/s can be set against a GEMM measured
// in the same run. Operators nested in another (addmm inside linear) count in their caller.
#pragma once

#include <ATen/record_function.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace blip::bench {

struct OpGroup {
  double seconds = 0;
  double flops = 0;
  std::int64_t calls = 0;
};

class OpProfile {
 public:
  // Starts recording on this thread (only one OpProfile at a time).
  OpProfile() {
    current() = this;
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback(&OpProfile::on_start, &OpProfile::on_end)
            .needsInputs(true)
            .scopes({at::RecordScope::FUNCTION}));
  }
  ~OpProfile() { stop(); }
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  void stop() {
    if (handle_ == 0) return;
    at::removeCallback(handle_);
    handle_ = 0;
    current() = nullptr;
  }

  const std::map<std::string, OpGroup>& groups() const { return groups_; }
  double traced_seconds() const {
    double s = 0;
    for (const auto& [name, g] : groups_) s += g.seconds;
    return s;
  }

 private:
  struct Context : at::ObserverContext {
    std::chrono::steady_clock::time_point start;
    std::string group;
    double flops = 0;
    bool outermost = false;
  };

  static OpProfile*& current() {
    thread_local OpProfile* profile = nullptr;
    return profile;
  }

  static std::vector<std::int64_t> sizes(const c10::IValue& v) {
    if (!v.isTensor()) return {};
    const auto s = v.toTensor().sizes();
    return {s.begin(), s.end()};
  }
  static double product(const std::vector<std::int64_t>& s, std::size_t end) {
    double p = 1;
    for (std::size_t i = 0; i < end && i < s.size(); ++i) p *= static_cast<double>(s[i]);
    return p;
  }

  // The group an operator counts in and its FLOPs (0 for memory-bound operators).
  static void classify(const at::RecordFunction& fn, Context& c) {
    const std::string name = fn.name();
    const auto in = fn.inputs();
    if (name == "aten::linear" && in.size() >= 2) {
      const auto x = sizes(in[0]), w = sizes(in[1]);  // x [..., K], weight [N, K]
      if (x.size() >= 1 && w.size() == 2) {
        const double rows = product(x, x.size() - 1);
        c.flops = 2.0 * rows * static_cast<double>(w[0]) * static_cast<double>(w[1]);
        c.group = "linear " + std::to_string(w[1]) + "->" + std::to_string(w[0]);
        return;
      }
    }
    if ((name == "aten::bmm" || name == "aten::matmul" || name == "aten::mm") && in.size() >= 2) {
      const auto a = sizes(in[0]), b = sizes(in[1]);  // [..., m, k] x [..., k, n]
      if (a.size() >= 2 && b.size() == 2 && name == "aten::matmul") {  // a Linear: x @ weight.t()
        c.flops = 2.0 * product(a, a.size() - 1) * static_cast<double>(b[0]) * static_cast<double>(b[1]);
        c.group = "linear " + std::to_string(b[0]) + "->" + std::to_string(b[1]);
        return;
      }
      if (a.size() >= 2 && b.size() >= 2) {
        const double batch = std::max(product(a, a.size() - 2), product(b, b.size() - 2));
        c.flops = 2.0 * batch * static_cast<double>(a[a.size() - 2]) * static_cast<double>(a.back()) *
                  static_cast<double>(b.back());
        c.group = "attention products (" + name.substr(6) + ")";
        return;
      }
    }
    if (name == "blip::fused_attention" && in.size() >= 2) {  // q [B, Lq, W] . k [Bk, N, W], then . v
      const auto q = sizes(in[0]), k = sizes(in[1]);
      if (q.size() == 3 && k.size() == 3) {
        c.flops = 4.0 * product(q, 3) * static_cast<double>(k[1]);
        c.group = "fused attention (kernel)";
        return;
      }
    }
    c.group = name;
  }

  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    auto c = std::make_unique<Context>();
    OpProfile* p = current();
    if (p == nullptr) return c;
    c->outermost = p->depth_++ == 0;
    if (c->outermost) classify(fn, *c);
    c->start = std::chrono::steady_clock::now();
    return c;
  }

  static void on_end(const at::RecordFunction& /*fn*/, at::ObserverContext* ctx) {
    const auto now = std::chrono::steady_clock::now();
    OpProfile* p = current();
    auto* c = static_cast<Context*>(ctx);
    if (p == nullptr || c == nullptr) return;
    --p->depth_;
    if (!c->outermost) return;
    OpGroup& g = p->groups_[c->group];
    g.seconds += std::chrono::duration<double>(now - c->start).count();
    g.flops += c->flops;
    ++g.calls;
  }

  at::CallbackHandle handle_ = 0;
  int depth_ = 0;
  std::map<std::string, OpGroup> groups_;
};

}  // namespace blip::bench
