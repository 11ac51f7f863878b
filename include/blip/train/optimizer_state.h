// The AdamW optimizer state in PyTorch's optimizer.state_dict() layout, so that checkpoints we
// write resume in BLIP (torch.optim.AdamW) and BLIP's checkpoints resume here.
//
// BLIP builds torch.optim.AdamW(model.parameters(), lr=init_lr, weight_decay) over ALL
// parameters, momentum copies included (they never get a gradient and so never get state); we use
// torch::optim::AdamW over model->parameters() in the same order, so index i means the same
// parameter on both sides.
#pragma once

#include <torch/optim/adamw.h>

#include <string>

#include "blip/io/pickle_value.h"

namespace blip::train {

// optimizer.state_dict() exactly as torch 1.13 writes it:
//   {'state': {i: {'step': 0-d float32 tensor, 'exp_avg': .., 'exp_avg_sq': ..
//                  [, 'max_exp_avg_sq': .. with amsgrad]}},        (only parameters with state,
//                                                                   by increasing index)
//    'param_groups': [{'lr', 'betas': (b1, b2), 'eps', 'weight_decay', 'amsgrad',
//                      'foreach': None, 'maximize': False, 'capturable': False,
//                      'params': [first index .. last index of the group]}]}
// Indices run over all groups' parameters in order. The moment tensors are the optimizer's own
// (no copy): write the value out before the next step.
io::pickle::Value adamw_state_dict(const torch::optim::AdamW& opt);

// Checks that `state` (an optimizer.state_dict() value) fits `opt`: same number of groups and of
// parameters per group, state indices within range, each state tensor floating point and shaped
// like its parameter, a whole-number step. Throws blip::Error starting with `what` and naming the
// parameter index and both shapes on a mismatch. Changes nothing.
void check_adamw_state_dict(const torch::optim::AdamW& opt, const io::pickle::Value& state,
                            const std::string& what);

// The inverse of adamw_state_dict, like optimizer.load_state_dict(): checks first (see above),
// then replaces all of `opt`'s state (copies, in each parameter's dtype and device) and sets each
// group's lr, betas, eps, weight_decay and amsgrad. 'step' may be a tensor (torch >= 1.12) or a
// number (older torch). 'foreach' and 'capturable' only choose PyTorch's implementation and are
// ignored; maximize=True changes the update and is rejected (LibTorch's AdamW has no such option).
void load_adamw_state_dict(torch::optim::AdamW& opt, const io::pickle::Value& state,
                           const std::string& what);

}  // namespace blip::train
