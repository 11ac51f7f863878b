#include "blip/data/distributed_sampler.h"

#include "blip/error.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <string>

namespace blip::data {

DistributedSampler::DistributedSampler(std::int64_t size, int num_replicas, int rank,
                                       bool shuffle, std::uint64_t seed)
    : size_(size), num_replicas_(num_replicas), rank_(rank), shuffle_(shuffle), seed_(seed) {
  if (size < 0) fail("DistributedSampler", "dataset size must be >= 0, got " + std::to_string(size));
  if (num_replicas < 1)
    fail("DistributedSampler", "num_replicas must be >= 1, got " + std::to_string(num_replicas));
  if (rank < 0 || rank >= num_replicas)
    fail("DistributedSampler", "invalid rank " + std::to_string(rank) + ", rank should be in [0, " +
                                   std::to_string(num_replicas - 1) + "]");
}

std::int64_t DistributedSampler::num_samples() const {
  return (size_ + num_replicas_ - 1) / num_replicas_;
}

std::vector<std::int64_t> DistributedSampler::indices() const {
  std::vector<std::int64_t> order(static_cast<std::size_t>(size_));
  if (shuffle_ && size_ > 0) {
    // PyTorch: g = torch.Generator(); g.manual_seed(seed + epoch); torch.randperm(n, generator=g).
    // Python's int sum wraps to the generator's uint64 seed the same way this one does.
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(
        seed_ + static_cast<std::uint64_t>(epoch_));
    const at::Tensor perm = at::randperm(size_, gen, at::TensorOptions().dtype(at::kLong));
    const std::int64_t* p = perm.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < size_; ++i) order[static_cast<std::size_t>(i)] = p[i];
  } else {
    for (std::int64_t i = 0; i < size_; ++i) order[static_cast<std::size_t>(i)] = i;
  }
  // Rank r takes padded[r::num_replicas], where padded repeats `order` cyclically up to
  // total_size (PyTorch's indices[:padding] or (indices * k)[:padding] both amount to this).
  std::vector<std::int64_t> mine;
  mine.reserve(static_cast<std::size_t>(num_samples()));
  for (std::int64_t pos = rank_; pos < total_size(); pos += num_replicas_)
    mine.push_back(order[static_cast<std::size_t>(pos % size_)]);
  return mine;
}

}  // namespace blip::data
