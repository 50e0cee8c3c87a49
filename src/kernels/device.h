// Which accelerators this process can use. Without a CUDA build these report none, so code (and
// GPU tests, which GTEST_SKIP) can ask the same question everywhere.
#pragma once

namespace t6 {

int cuda_device_count();          // 0 without CUDA, without a driver or without a device

}  // namespace t6
