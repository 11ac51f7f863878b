// Smallest use of an installed libblip: pre_caption and the error type.
#include <blip/error.h>

#include <cstdio>

int main() {
  try {
    blip::fail("example", "reason");
  } catch (const blip::Error& e) {
    std::printf("libblip linked: %s\n", e.what());
    return 0;
  }
  return 1;
}
