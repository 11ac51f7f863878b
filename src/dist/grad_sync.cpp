#include "blip/dist/grad_sync.h"

#include "blip/error.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <string>
#include <utility>

namespace blip::dist {

namespace {

// Tensors of one dtype and device, in order, up to `cap_bytes` per bucket (a larger tensor gets
// a bucket of its own). Returns index lists into `tensors` (only the indices in `which`).
std::vector<std::vector<std::size_t>> make_buckets(const std::vector<at::Tensor>& tensors,
                                                   const std::vector<std::size_t>& which,
                                                   std::int64_t cap_bytes) {
  std::vector<std::vector<std::size_t>> buckets;
  std::int64_t bytes = 0;
  for (const std::size_t i : which) {
    const at::Tensor& t = tensors[i];
    const std::int64_t size = t.numel() * static_cast<std::int64_t>(t.element_size());
    bool fresh = buckets.empty() || bytes + size > cap_bytes;
    if (!fresh) {
      const at::Tensor& first = tensors[buckets.back().front()];
      fresh = first.scalar_type() != t.scalar_type() || first.device() != t.device();
    }
    if (fresh) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += size;
  }
  return buckets;
}

// FNV-1a over the dtypes and shapes: equal on two ranks when they hold the same tensor layout
// (up to a hash collision, which only weakens the check).
std::int64_t layout_hash(const std::vector<at::Tensor>& tensors, const std::vector<std::size_t>& which) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::int64_t v) {
    for (int byte = 0; byte < 8; ++byte) {
      h ^= static_cast<std::uint64_t>(v >> (8 * byte)) & 0xffu;
      h *= 1099511628211ULL;
    }
  };
  for (const std::size_t i : which) {
    mix(static_cast<std::int64_t>(tensors[i].scalar_type()));
    mix(tensors[i].dim());
    for (const std::int64_t s : tensors[i].sizes()) mix(s);
  }
  return static_cast<std::int64_t>(h);
}

// Collective: every rank must describe the same layout (count, elements, buckets, shapes);
// otherwise every rank throws (all see the same gathered rows), instead of a later collective
// hanging or mixing unrelated tensors.
void check_same_layout(const DistContext& dist, const std::string& what,
                       const std::vector<at::Tensor>& tensors, const std::vector<std::size_t>& which,
                       std::int64_t num_buckets) {
  std::int64_t numel = 0;
  for (const std::size_t i : which) numel += tensors[i].numel();
  const at::Tensor mine = at::tensor(
      std::vector<std::int64_t>{static_cast<std::int64_t>(which.size()), numel, num_buckets,
                                layout_hash(tensors, which)},
      at::kLong).view({1, 4});
  const at::Tensor all = dist.all_gather(mine);
  for (int r = 0; r < dist.world_size(); ++r) {
    if (at::equal(all[r], all[0])) continue;
    auto describe = [&](int k) {
      return "rank " + std::to_string(k) + " has " + std::to_string(all[k][0].item<std::int64_t>()) +
             " tensors, " + std::to_string(all[k][1].item<std::int64_t>()) + " elements, " +
             std::to_string(all[k][2].item<std::int64_t>()) + " buckets";
    };
    fail(what + " (rank " + std::to_string(dist.rank()) + " of " +
             std::to_string(dist.world_size()) + ")",
         "ranks hold different tensors: " + describe(0) + "; " + describe(r) +
             (at::equal(all[r].narrow(0, 0, 3), all[0].narrow(0, 0, 3)) ? "; shapes or dtypes differ"
                                                                          : ""));
  }
}

std::string param_range(const std::vector<std::size_t>& indices) {
  return "parameters " + std::to_string(indices.front()) + ".." + std::to_string(indices.back());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// GradientAverager
// ---------------------------------------------------------------------------------------------
GradientAverager::GradientAverager(DistContext dist, std::vector<at::Tensor> params,
                                   std::int64_t bucket_bytes)
    : dist_(std::move(dist)), params_(std::move(params)) {
  if (bucket_bytes <= 0)
    fail("gradient averaging", "bucket size must be positive, got " + std::to_string(bucket_bytes) + " bytes");
  std::vector<std::size_t> synced;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& p = params_[i];
    if (!p.defined()) fail("gradient averaging", "parameter " + std::to_string(i) + " is undefined");
    if (!p.requires_grad()) continue;  // frozen: nothing to average (as DDP)
    if (!at::isFloatingType(p.scalar_type()))
      fail("gradient averaging", "parameter " + std::to_string(i) + " has dtype " +
                                     std::string(c10::toString(p.scalar_type())) +
                                     "; only floating-point gradients are averaged");
    synced.push_back(i);
  }
  for (auto& indices : make_buckets(params_, synced, bucket_bytes)) {
    Bucket b;
    for (const std::size_t i : indices) b.numel += params_[i].numel();
    b.params = std::move(indices);
    buckets_.push_back(std::move(b));
  }
  if (dist_.world_size() > 1)
    check_same_layout(dist_, "gradient averaging", params_, synced, num_buckets());
}

void GradientAverager::average() {
  if (dist_.world_size() <= 1) return;
  // Check every gradient before the first collective, so that a missing one fails here with
  // its index rather than as a mismatched all_reduce.
  for (const Bucket& b : buckets_)
    for (const std::size_t i : b.params) {
      const at::Tensor& g = params_[i].grad();
      if (!g.defined())
        fail("gradient averaging (rank " + std::to_string(dist_.rank()) + ")",
             "parameter " + std::to_string(i) +
                 " has no gradient after backward (every rank must produce the same gradients; "
                 "freeze unused parameters with requires_grad=false)");
      if (g.is_sparse()) fail("gradient averaging", "parameter " + std::to_string(i) + " has a sparse gradient");
    }
  at::NoGradGuard no_grad;
  const double inv_world = 1.0 / dist_.world_size();
  for (std::size_t k = 0; k < buckets_.size(); ++k) {
    Bucket& b = buckets_[k];
    if (!b.flat.defined()) b.flat = at::empty({b.numel}, params_[b.params.front()].options().requires_grad(false));
    std::int64_t offset = 0;
    for (const std::size_t i : b.params) {
      const at::Tensor& g = params_[i].grad();
      b.flat.narrow(0, offset, g.numel()).view(g.sizes()).copy_(g);
      offset += g.numel();
    }
    // Divide before summing, as DDP's default hook does (no overflow in low precision).
    b.flat.mul_(inv_world);
    try {
      dist_.all_reduce_sum(b.flat);
    } catch (const blip::Error& e) {
      fail("gradient averaging, bucket " + std::to_string(k) + " of " + std::to_string(buckets_.size()) +
               " (" + param_range(b.params) + ")",
           e.what());
    }
    offset = 0;
    for (const std::size_t i : b.params) {
      const at::Tensor& g = params_[i].grad();
      g.copy_(b.flat.narrow(0, offset, g.numel()).view(g.sizes()));
      offset += g.numel();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// broadcast_tensors
// ---------------------------------------------------------------------------------------------
void broadcast_tensors(const DistContext& dist, const std::vector<at::Tensor>& tensors, int root) {
  if (root < 0 || root >= dist.world_size())
    fail("broadcast_tensors", "root " + std::to_string(root) + " is not a rank of " +
                                  std::to_string(dist.world_size()));
  std::vector<std::size_t> all;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined()) fail("broadcast_tensors", "tensor " + std::to_string(i) + " is undefined");
    all.push_back(i);
  }
  if (dist.world_size() <= 1) return;
  const auto buckets = make_buckets(tensors, all, kDefaultBucketBytes);
  check_same_layout(dist, "broadcast_tensors", tensors, all, static_cast<std::int64_t>(buckets.size()));
  at::NoGradGuard no_grad;  // parameters are leaves that require grad
  const bool is_root = dist.rank() == root;
  for (std::size_t k = 0; k < buckets.size(); ++k) {
    const auto& indices = buckets[k];
    std::int64_t numel = 0;
    for (const std::size_t i : indices) numel += tensors[i].numel();
    at::Tensor flat = at::empty({numel}, tensors[indices.front()].options().requires_grad(false));
    std::int64_t offset = 0;
    if (is_root)
      for (const std::size_t i : indices) {
        flat.narrow(0, offset, tensors[i].numel()).view(tensors[i].sizes()).copy_(tensors[i]);
        offset += tensors[i].numel();
      }
    try {
      dist.broadcast(flat, root);
    } catch (const blip::Error& e) {
      fail("broadcast_tensors, bucket " + std::to_string(k) + " of " + std::to_string(buckets.size()) +
               " (tensors " + std::to_string(indices.front()) + ".." + std::to_string(indices.back()) + ")",
           e.what());
    }
    if (is_root) continue;
    offset = 0;
    for (const std::size_t i : indices) {
      tensors[i].copy_(flat.narrow(0, offset, tensors[i].numel()).view(tensors[i].sizes()));
      offset += tensors[i].numel();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// all_gather_with_grad
// ---------------------------------------------------------------------------------------------
namespace {

// Carries the DistContext from forward to backward through the autograd context.
struct DistHolder : torch::CustomClassHolder {
  explicit DistHolder(DistContext d) : dist(std::move(d)) {}
  DistContext dist;
};

struct GatherWithGrad : torch::autograd::Function<GatherWithGrad> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& t,
                            DistContext dist) {
    std::vector<std::int64_t> rows;
    at::Tensor gathered = dist.all_gather(t, &rows);
    std::int64_t offset = 0;
    for (int r = 0; r < dist.rank(); ++r) offset += rows[r];
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["rows"] = rows[dist.rank()];
    ctx->saved_data["dist"] = c10::IValue::make_capsule(c10::make_intrusive<DistHolder>(std::move(dist)));
    return gathered;
  }

  // Every rank's loss depends on every rank's rows: the gradient of rank r's input is the sum
  // over ranks of the gradient each loss sends to rows of rank r.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto holder = ctx->saved_data["dist"].toCapsule();
    const DistContext& dist = static_cast<DistHolder*>(holder.get())->dist;
    // Undefined output gradients arrive as zeros (materialize_grads), so every rank joins.
    at::Tensor summed = grads[0].contiguous().clone();  // never write into the incoming grad
    try {
      dist.all_reduce_sum(summed);
    } catch (const blip::Error& e) {
      fail("all_gather_with_grad backward", e.what());
    }
    return {summed.narrow(0, ctx->saved_data["offset"].toInt(), ctx->saved_data["rows"].toInt()),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor all_gather_with_grad(const DistContext& dist, const at::Tensor& t) {
  if (!t.defined() || t.dim() < 1)
    fail("all_gather_with_grad", "expects a defined tensor with at least one dimension");
  if (dist.world_size() <= 1) return t;  // as BLIP: nothing to gather
  return GatherWithGrad::apply(t, dist);
}

}  // namespace blip::dist
