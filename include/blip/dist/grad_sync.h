// Data-parallel training over a DistContext, as torch's DistributedDataParallel does it for BLIP's
// train_retrieval.py: the same initial weights on every rank (broadcast from rank 0), gradients
// averaged over ranks after each backward in flat buckets (one all_reduce per bucket), and BLIP's
// GatherLayer (all_gather_with_grad in models/blip_retrieval.py) for the contrastive loss over
// every rank's batch.
//
// Every function here is collective: all ranks call it in the same order with tensors of the
// same shapes and dtypes (checked once where a mismatch would otherwise hang or corrupt).
// World size 1 makes each of them a no-op (all_gather_with_grad returns its input).
#pragma once

#include "blip/dist/distributed.h"
#include "blip/dist/num_threads.h"  // default_num_threads: the thread count a training rank uses

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace blip::dist {

// DDP's default bucket_cap_mb (25 MiB).
inline constexpr std::int64_t kDefaultBucketBytes = std::int64_t{25} << 20;

// Averages parameter gradients over ranks: after backward, each parameter's .grad() becomes the
// mean of that gradient over all ranks. Gradients are copied into flat buckets of at most
// `bucket_bytes` (a larger parameter gets a bucket of its own; a bucket holds one dtype and one
// device), each bucket is divided by the world size and summed with one all_reduce, and the
// result is copied back, in parameter order.
//
// Parameters that do not require grad (BLIP's momentum encoders) are left out, as DDP leaves
// them out. The constructor checks, collectively, that every rank holds the same parameter
// shapes and dtypes. average() runs after backward, without overlapping it: libtorch 1.13's
// public API has no post-accumulate-grad hook telling when a leaf's .grad() is final.
class GradientAverager {
 public:
  GradientAverager(DistContext dist, std::vector<at::Tensor> params,
                   std::int64_t bucket_bytes = kDefaultBucketBytes);

  // Every synced parameter must have a defined, dense .grad() here (all ranks must produce the
  // same gradients); otherwise blip::Error naming the parameter's index in `params`.
  void average();

  // Buckets (all_reduce calls per average()); 0 when nothing requires grad.
  std::int64_t num_buckets() const { return static_cast<std::int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<std::size_t> params;  // indices into the constructor's `params`
    std::int64_t numel = 0;
    at::Tensor flat;  // reused buffer (allocated on first average())
  };

  DistContext dist_;
  std::vector<at::Tensor> params_;
  std::vector<Bucket> buckets_;
};

// Overwrites every tensor with root's copy, in place (rank `root`'s initial weights and buffers
// win, as DDP's constructor does). Tensors of one dtype and device travel in flat buckets of at
// most kDefaultBucketBytes, one broadcast each. Tensors requiring grad (parameters) are written
// without recording autograd history.
void broadcast_tensors(const DistContext& dist, const std::vector<at::Tensor>& tensors,
                       int root = 0);

// BLIP's GatherLayer + torch.cat: every rank's `t` concatenated along dim 0 in rank order. Its
// backward sums the incoming gradient over ranks (all_reduce) and returns this rank's rows, so
// that a loss computed on the gathered tensor on every rank trains every rank's inputs. Ranks
// should pass the same shape (BLIP does); differing dim-0 sizes are also handled. Every rank must
// backpropagate through the result (its backward is a collective).
at::Tensor all_gather_with_grad(const DistContext& dist, const at::Tensor& t);

}  // namespace blip::dist
