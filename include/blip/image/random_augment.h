// BLIP's RandomAugment (transform/randaugment.py) with its `arg_dict`, drawing from a
// TransformRng instead of numpy's global generator. The order of the draws is BLIP's:
//   1. np.random.choice(augs, N): N ops, uniformly, with replacement;
//   2. for each chosen op in order: a fire draw u; the op is skipped when u > 0.5 (it runs when
//      u <= 0.5); only when it runs, arg_dict[op](M) is evaluated, which for the signed ops draws
//      the sign: ShearX/ShearY/TranslateX/TranslateY are negated when the draw is > 0.5, Rotate
//      when it is < 0.5 (BLIP's two helpers compare differently).
#pragma once

#include "blip/image/augment_ops.h"
#include "blip/image/image_u8.h"
#include "blip/image/transform_rng.h"

#include <vector>

namespace blip::image {

// randaugment.py's constants.
inline constexpr int kAugmentMaxLevel = 10;          // MAX_LEVEL
inline constexpr double kAugmentTranslateConst = 10;  // translate_const (pixels at MAX_LEVEL)
inline constexpr double kAugmentShearMax = 0.3;      // shear factor at MAX_LEVEL
inline constexpr double kAugmentRotateMax = 30;      // degrees at MAX_LEVEL
inline constexpr double kAugmentEnhanceSpan = 1.8;   // enhance factor = L/MAX * 1.8 + 0.1
inline constexpr double kAugmentEnhanceBase = 0.1;
// RandomAugment's per-op probability (get_random_ops returns (op, 0.5, M)).
inline constexpr double kAugmentOpProbability = 0.5;

// The augs list of BLIP's transform_train, in its order.
std::vector<AugmentOp> blip_train_augment_ops();

// Whether arg_dict[op] draws a sign.
bool augment_op_is_signed(AugmentOp op);
// Whether the sign draw `u` negates the op's magnitude (see the top of this file).
bool augment_sign_negates(AugmentOp op, double u);
// arg_dict[op](level) with the sign given instead of drawn.
AugmentArgs augment_args(AugmentOp op, int level, bool negate);

// One chosen op of a RandomAugment call, as drawn.
struct AugmentStep {
  AugmentOp op = AugmentOp::Identity;
  int level = 0;
  double fire_draw = 0.0;
  bool fired = false;
  bool has_sign_draw = false;  // fired and signed
  double sign_draw = 0.0;
  AugmentArgs args;            // meaningful when fired
};

struct RandomAugment {
  int n = 2;  // N: ops chosen per image
  int m = 5;  // M: the level every op is applied at
  std::vector<AugmentOp> ops = blip_train_augment_ops();

  // Draws and applies the ops; `trace`, when given, receives every chosen op (fired or not).
  // Throws blip::Error for n < 0, m < 0, or n > 0 with an empty op list.
  ImageU8 apply(const ImageU8& image, TransformRng& rng,
                std::vector<AugmentStep>* trace = nullptr) const;
};

// Applies the fired steps of a trace in order, without drawing anything.
ImageU8 replay_augment(const ImageU8& image, const std::vector<AugmentStep>& steps);

}  // namespace blip::image
