#include <gtest/gtest.h>

#include "blip/error.h"

TEST(Error, FailNamesWhatAndReason) {
  try {
    blip::fail("model.pth", "truncated zip archive");
    FAIL() << "fail() returned";
  } catch (const blip::Error& e) {
    EXPECT_STREQ(e.what(), "model.pth: truncated zip archive");
  }
}
