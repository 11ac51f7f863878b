// Smallest use of an installed libblip: BLIP's caption normalisation and the error type.
#include <blip/error.h>
#include <blip/text/pre_caption.h>

#include <cstdio>

int main() {
  const std::string caption = blip::text::pre_caption("Two DOGS (brown & white) play in the snow!!", 30);
  std::printf("pre_caption: '%s'\n", caption.c_str());
  try {
    blip::text::pre_caption("bad \xC3\x28 byte", 30, "example");
  } catch (const blip::Error& e) {
    std::printf("blip::Error: %s\n", e.what());
    return caption == "two dogs brown & white play in the snow" ? 0 : 1;
  }
  return 1;
}
