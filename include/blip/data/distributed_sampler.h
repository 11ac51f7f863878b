// torch.utils.data.DistributedSampler as BLIP's create_sampler builds it for training
// (shuffle=True, drop_last=False): each epoch's order is torch.randperm(size) drawn from a fresh
// CPU generator seeded with seed + epoch (the same numbers PyTorch draws), padded by repeating
// its head up to total_size = ceil(size / num_replicas) * num_replicas, and rank r takes
// positions r, r + num_replicas, ... So the shards of one epoch are disjoint apart from the
// padding, all ranks get num_samples() indices, and together they cover the set.
#pragma once

#include <cstdint>
#include <vector>

namespace blip::data {

class DistributedSampler {
 public:
  // Throws blip::Error for a negative size, num_replicas < 1 or rank outside [0, num_replicas).
  DistributedSampler(std::int64_t size, int num_replicas, int rank, bool shuffle = true,
                     std::uint64_t seed = 0);

  // Like sampler.set_epoch(epoch): call before each epoch, or every epoch has the same order.
  void set_epoch(std::int64_t epoch) { epoch_ = epoch; }
  std::int64_t epoch() const { return epoch_; }

  // This rank's dataset indices for the current epoch (num_samples() of them).
  std::vector<std::int64_t> indices() const;

  std::int64_t num_samples() const;                              // ceil(size / num_replicas)
  std::int64_t total_size() const { return num_samples() * num_replicas_; }
  std::int64_t size() const { return size_; }

 private:
  std::int64_t size_;
  int num_replicas_, rank_;
  bool shuffle_;
  std::uint64_t seed_;
  std::int64_t epoch_ = 0;
};

}  // namespace blip::data
