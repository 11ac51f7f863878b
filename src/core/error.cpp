#include "blip/error.h"

namespace blip {

void fail(const std::string& what, const std::string& reason) { throw Error(what + ": " + reason); }

}  // namespace blip
