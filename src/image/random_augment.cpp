#include "blip/image/random_augment.h"

#include "blip/error.h"

#include <string>
#include <utility>

namespace blip::image {

std::vector<AugmentOp> blip_train_augment_ops() {
  return {AugmentOp::Identity,   AugmentOp::AutoContrast, AugmentOp::Brightness,
          AugmentOp::Sharpness,  AugmentOp::Equalize,     AugmentOp::ShearX,
          AugmentOp::ShearY,     AugmentOp::TranslateX,   AugmentOp::TranslateY,
          AugmentOp::Rotate};
}

bool augment_op_is_signed(AugmentOp op) { return augment_op_is_warp(op); }

bool augment_sign_negates(AugmentOp op, double u) {
  if (op == AugmentOp::Rotate) return u < 0.5;  // rotate_level_to_args
  if (augment_op_is_signed(op)) return u > 0.5;  // shear_/translate_level_to_args
  return false;
}

AugmentArgs augment_args(AugmentOp op, int level, bool negate) {
  // Python: level / MAX_LEVEL is a true division in double, then one multiply (and one add).
  const double frac = static_cast<double>(level) / static_cast<double>(kAugmentMaxLevel);
  AugmentArgs args;
  switch (op) {
    case AugmentOp::Identity:
    case AugmentOp::AutoContrast:
    case AugmentOp::Equalize:
      return args;
    case AugmentOp::Brightness:
    case AugmentOp::Sharpness:
      args.value = frac * kAugmentEnhanceSpan + kAugmentEnhanceBase;
      return args;
    case AugmentOp::ShearX:
    case AugmentOp::ShearY:
      args.value = frac * kAugmentShearMax;
      break;
    case AugmentOp::TranslateX:
    case AugmentOp::TranslateY:
      args.value = frac * kAugmentTranslateConst;
      break;
    case AugmentOp::Rotate:
      args.value = frac * kAugmentRotateMax;
      break;
  }
  if (negate) args.value = -args.value;
  return args;
}

ImageU8 RandomAugment::apply(const ImageU8& image, TransformRng& rng,
                             std::vector<AugmentStep>* trace) const {
  if (n < 0) fail("RandomAugment", "N must be >= 0, got " + std::to_string(n));
  if (m < 0) fail("RandomAugment", "M must be >= 0, got " + std::to_string(m));
  if (n > 0 && ops.empty()) fail("RandomAugment", "the op list is empty");
  if (trace) trace->clear();
  std::vector<AugmentStep> steps(static_cast<std::size_t>(n));
  // All ops are chosen first (np.random.choice), then each one's fire and sign draws follow.
  for (auto& s : steps) {
    s.op = ops[static_cast<std::size_t>(rng.uniform_int(static_cast<std::int64_t>(ops.size())))];
    s.level = m;
  }
  ImageU8 out = image;
  for (auto& s : steps) {
    s.fire_draw = rng.uniform();
    s.fired = !(s.fire_draw > kAugmentOpProbability);
    if (!s.fired) continue;
    bool negate = false;
    if (augment_op_is_signed(s.op)) {
      s.has_sign_draw = true;
      s.sign_draw = rng.uniform();
      negate = augment_sign_negates(s.op, s.sign_draw);
    }
    s.args = augment_args(s.op, s.level, negate);
    out = apply_augment_op(out, s.op, s.args);
  }
  if (trace) *trace = std::move(steps);
  return out;
}

ImageU8 replay_augment(const ImageU8& image, const std::vector<AugmentStep>& steps) {
  ImageU8 out = image;
  for (const auto& s : steps)
    if (s.fired) out = apply_augment_op(out, s.op, s.args);
  return out;
}

}  // namespace blip::image
