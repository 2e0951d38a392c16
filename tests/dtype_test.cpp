#include <gtest/gtest.h>
#include "core/dtype.h"
TEST(DType, Placeholder) { EXPECT_EQ(expo::dtype_size(expo::DType::BF16), 2u); }
