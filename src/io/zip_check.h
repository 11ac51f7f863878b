// Structural validation of a zip archive before LibTorch's reader (miniz) sees it: every offset
// and size in the end-of-central-directory record, the central directory and the local headers
// must lie inside the file, and no entry may claim more uncompressed bytes than its compressed
// data could produce. This keeps hostile archives from driving huge allocations or reads.
#pragma once

#include <string>

namespace blip::io::detail {

class InputFile;

// Throws blip::Error naming the file and the first problem found.
void check_zip_structure(const InputFile& file);

}  // namespace blip::io::detail
