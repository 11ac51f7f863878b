#include <gtest/gtest.h>

#include "blip/config.h"
#include "common/fixtures.h"

TEST(Config, Placeholder) { SUCCEED(); }
