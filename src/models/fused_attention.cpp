#include "models/fused_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "blip/models/fused_attention.h"
#include "models/fused_attention_block.h"

namespace blip::models {

namespace {

using fused::kMaxRowTile;
using KernelFn = void (*)(const fused::AttentionBlock&, float*);

struct Kernel {
  const char* name;
  KernelFn fn;
};

// The kernels that were built and that this CPU and OS run, widest first (__builtin_cpu_supports
// also checks that the OS saves the vector registers).
std::vector<Kernel> detect_kernels() {
  std::vector<Kernel> kernels;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (fused::avx512_kernel_built() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
    kernels.push_back({"avx512", &fused::attend_block_avx512});
  if (fused::avx2_kernel_built() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    kernels.push_back({"avx2", &fused::attend_block_avx2});
#endif
  return kernels;
}

const std::vector<Kernel>& runnable() {
  static const std::vector<Kernel> kernels = detect_kernels();
  return kernels;
}

const Kernel kNone = {"none", nullptr};
thread_local const Kernel* t_choice = nullptr;  // FusedKernelChoice

const Kernel& kernel() {
  if (t_choice != nullptr) return *t_choice;
  return runnable().empty() ? kNone : runnable().front();
}

thread_local bool t_fused_enabled = true;

// Query rows per task: a few tiles, so that every thread gets many tasks.
constexpr std::int64_t kTaskRows = 96;

bool dense_float_cpu(const at::Tensor& t) {
  return t.defined() && t.scalar_type() == at::kFloat && t.device().is_cpu() && t.stride(-1) == 1 &&
         !t.is_sparse();
}

}  // namespace

std::int64_t fused::attention_workspace_floats(std::int64_t keys, std::int64_t dim) {
  const std::int64_t dim_padded = (dim + kMaxVectorWidth - 1) / kMaxVectorWidth * kMaxVectorWidth;
  // a tile of queries and its scores; padded values and outputs for an odd head dimension
  return kMaxRowTile * (dim + keys) + (keys + kMaxOutRows) * dim_padded;
}

const char* fused_attention_kernel() { return kernel().name; }

UnfusedAttention::UnfusedAttention() : previous_(t_fused_enabled) { t_fused_enabled = false; }
UnfusedAttention::~UnfusedAttention() { t_fused_enabled = previous_; }

FusedKernelChoice::FusedKernelChoice(const char* name) : previous_(t_choice) {
  for (const Kernel& k : runnable())
    if (std::string(k.name) == name) {
      t_choice = &k;
      return;
    }
  throw std::invalid_argument(std::string("fused attention kernel '") + name + "' does not run on this CPU");
}

FusedKernelChoice::~FusedKernelChoice() { t_choice = static_cast<const Kernel*>(previous_); }

std::vector<std::string> runnable_fused_kernels() {
  std::vector<std::string> names;
  for (const Kernel& k : runnable()) names.emplace_back(k.name);
  return names;
}

bool fused_attention_enabled() { return t_fused_enabled && kernel().fn != nullptr; }

int fused_attention_threads() {
  std::atomic<int> threads{1};
  at::parallel_for(0, 4 * static_cast<std::int64_t>(at::get_num_threads()), 1, [&](std::int64_t, std::int64_t) {
    const int seen = at::get_thread_num() + 1;
    int now = threads.load();
    while (seen > now && !threads.compare_exchange_weak(now, seen)) {
    }
  });
  return threads.load();
}

bool fused_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& key_bias, std::int64_t heads) {
  if (!fused_attention_enabled() || heads < 1) return false;
  if (!dense_float_cpu(q) || !dense_float_cpu(k) || !dense_float_cpu(v)) return false;
  if (q.dim() != 3 || k.dim() != 3 || v.dim() != 3) return false;
  if (c10::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad() ||
                                      (key_bias.defined() && key_bias.requires_grad())))
    return false;
  const std::int64_t batch = q.size(0), width = q.size(2), keys = k.size(1);
  if (width % heads != 0 || k.size(2) != width || v.size(2) != width || v.size(1) != keys || keys < 1) return false;
  if ((k.size(0) != batch && k.size(0) != 1) || v.size(0) != k.size(0)) return false;
  if (key_bias.defined()) {
    if (!dense_float_cpu(key_bias) || key_bias.dim() != 2 || key_bias.size(1) != keys) return false;
    if (key_bias.size(0) != batch && key_bias.size(0) != 1) return false;
  }
  return true;
}

at::Tensor fused_attention(const at::Tensor& q_in, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& key_bias_in, std::int64_t heads, const AttentionScale& scale) {
  TORCH_CHECK(fused_attention_applies(q_in, k, v, key_bias_in, heads), "fused_attention: unsupported call");
  RECORD_FUNCTION("blip::fused_attention", std::vector<c10::IValue>({q_in, k, v}));  // for profilers
  const at::Tensor key_bias = key_bias_in.defined() ? key_bias_in.contiguous() : key_bias_in;
  const std::int64_t batch = q_in.size(0), len = q_in.size(1), width = q_in.size(2), keys = k.size(1);
  const std::int64_t dim = width / heads;
  at::Tensor out = at::empty({batch, len, width}, q_in.options());
  if (out.numel() == 0) return out;  // no query rows: nothing to split into tasks

  // Keys and bias shared by the whole batch, with query rows evenly spaced: one long run of rows
  // per head, split into tasks of whole tiles (a text's few rows would leave most lanes empty).
  at::Tensor q = q_in, o = out;
  const bool shared = k.size(0) == 1 && (!key_bias.defined() || key_bias.size(0) == 1);
  if (shared && batch > 1 && q.stride(0) == len * q.stride(1)) {
    q = q.as_strided({1, batch * len, width}, {batch * len * q.stride(1), q.stride(1), 1});
    o = o.view({1, batch * len, width});
  }
  const std::int64_t groups = q.size(0), rows = q.size(1);
  const std::int64_t blocks = (rows + kTaskRows - 1) / kTaskRows;
  // Rows per task, balanced, whole tiles of every kernel where there are several tasks.
  const std::int64_t task_rows =
      blocks == 1 ? rows : ((rows + blocks - 1) / blocks + kMaxRowTile - 1) / kMaxRowTile * kMaxRowTile;
  const std::int64_t tasks_per_head = (rows + task_rows - 1) / task_rows;

  const KernelFn fn = kernel().fn;
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const float* bp = key_bias.defined() ? key_bias.data_ptr<float>() : nullptr;
  float* op = o.data_ptr<float>();
  const std::int64_t workspace = fused::attention_workspace_floats(keys, dim);
  at::parallel_for(0, groups * heads * tasks_per_head, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> buffer(static_cast<std::size_t>(workspace));
    for (std::int64_t t = begin; t < end; ++t) {
      const std::int64_t g = t / (heads * tasks_per_head), h = t / tasks_per_head % heads;
      const std::int64_t r0 = t % tasks_per_head * task_rows;
      const std::int64_t kb = k.size(0) == 1 ? 0 : g;
      fused::AttentionBlock b;
      b.q = qp + g * q.stride(0) + r0 * q.stride(1) + h * dim;
      b.q_stride = q.stride(1);
      b.k = kp + kb * k.stride(0) + h * dim;
      b.k_stride = k.stride(1);
      b.v = vp + kb * v.stride(0) + h * dim;
      b.v_stride = v.stride(1);
      b.key_bias = bp == nullptr ? nullptr : bp + (key_bias.size(0) == 1 ? 0 : g) * keys;
      b.out = op + g * o.stride(0) + r0 * o.stride(1) + h * dim;
      b.out_stride = o.stride(1);
      b.rows = std::min(task_rows, rows - r0);
      b.keys = keys;
      b.dim = dim;
      b.q_scale = scale.q_scale;
      b.score_divisor = scale.score_divisor;
      b.score_multiplier = scale.score_multiplier;
      fn(b, buffer.data());
    }
  });
  return out;
}

}  // namespace blip::models
