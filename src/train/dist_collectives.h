// models::TrainCollectives over a dist::DistContext (the models layer knows no process groups).
#pragma once

#include "blip/dist/distributed.h"
#include "blip/dist/grad_sync.h"
#include "blip/models/train_forward.h"

namespace blip::train {

class DistCollectives final : public models::TrainCollectives {
 public:
  explicit DistCollectives(const dist::DistContext& dist) : dist_(dist) {}
  int world_size() const override { return dist_.world_size(); }
  at::Tensor all_gather(const at::Tensor& t) const override { return dist_.all_gather(t.detach()); }
  at::Tensor all_gather_with_grad(const at::Tensor& t) const override {
    return dist::all_gather_with_grad(dist_, t);
  }

 private:
  const dist::DistContext& dist_;
};

}  // namespace blip::train
