// Core utilities: shapes, arenas, bf16 rounding, the counter-based RNG and atomic file writes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/arena.h"
#include "common/test_paths.h"
#include "core/bf16.h"
#include "core/device_memory.h"
#include "core/durable_file.h"
#include "core/error.h"
#include "core/process_memory.h"
#include "core/rng.h"
#include "core/tensor.h"

using namespace t6;

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3f80);
  // 1 + 2^-8 is exactly halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to even (1).
  EXPECT_EQ(round_to_bf16(1.0f + std::ldexp(1.0f, -8)), 1.0f);
  // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(round_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_EQ(round_to_bf16(-2.5f), -2.5f);
  EXPECT_TRUE(std::isnan(round_to_bf16(NAN)));
}

TEST(Arena, PlansOnceAndHandsOutDisjointAlignedViews) {
  Tensor a, b;
  Arena arena([&](Arena& planner) {
    a = planner.take({3, 5});
    b = planner.take({7}, DType::F64);
  });
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw()) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.raw()) % 64, 0u);
  EXPECT_GE(static_cast<char*>(b.raw()) - static_cast<char*>(a.raw()), int64_t(a.bytes()));
  EXPECT_EQ(b.data<double>()[6], 0.0);
  EXPECT_GE(arena.bytes(), a.bytes() + b.bytes());
}

TEST(Tensor, RowsAndViews) {
  HostTensor t({4, 3}, DType::F32);
  for (int i = 0; i < 12; ++i) t.data<float>()[i] = float(i);
  Tensor middle = t.view().rows(1, 3);
  EXPECT_EQ(middle.shape(), Shape({2, 3}));
  EXPECT_EQ(middle.data<float>()[0], 3.0f);
  EXPECT_EQ(middle.view({6}).data<float>()[5], 8.0f);
  EXPECT_EQ(Shape({2, 24, 64}).to_string(), "(2, 24, 64)");
}

TEST(CounterRng, IsAFunctionOfSeedNameAndIndex) {
  CounterRng a(1234, "transformer.wte.weight"), b(1234, "transformer.wte.weight");
  CounterRng other_name(1234, "transformer.h.0.mlp.c_fc1.weight"), other_seed(1235, "transformer.wte.weight");
  for (uint64_t i : {0ull, 1ull, 99999ull, 1ull << 40}) {
    EXPECT_EQ(a.bits(i), b.bits(i));
    EXPECT_NE(a.bits(i), other_name.bits(i));
    EXPECT_NE(a.bits(i), other_seed.bits(i));
  }
  std::set<uint32_t> distinct;
  double sum = 0;
  const int count = 100000;
  for (int i = 0; i < count; ++i) {
    distinct.insert(a.bits(i));
    const float u = a.uniform(i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_GT(distinct.size(), size_t(count - 5));
  EXPECT_NEAR(sum / count, 0.5, 0.005);  // 5 sigma of the mean of 1e5 uniforms is 0.0046
}

// A buffer larger than the machine is one clear error before any page is touched (with overcommit
// the zero-fill would otherwise get the process killed), and nothing is allocated.
// The CPU backend asks for empty pinned and device buffers (StepBuffers): zero bytes are the empty
// buffer in every build. A CPU-only build (T6_CUDA=OFF, what the demo builds without a GPU) once
// refused them, and t6_pretrain stopped at start-up.
TEST(DeviceMemory, ZeroBytesAreTheEmptyBufferInEveryBuild) {
  const PinnedHostBuffer pinned(0);
  EXPECT_EQ(pinned.bytes(), 0u);
  EXPECT_EQ(pinned.data(), nullptr);
  const DeviceBuffer device(0);
  EXPECT_EQ(device.bytes(), 0u);
}

TEST(HostBuffer, LargerThanTheMachineIsAClearError) {
  const size_t too_big = size_t(physical_memory_bytes()) + (size_t(1) << 30);
  try {
    HostBuffer buffer(too_big);
    ADD_FAILURE() << "allocated " << buffer.bytes() << " bytes";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("cannot allocate"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("GiB of host memory: this machine has"), std::string::npos) << error.what();
  }
  EXPECT_EQ(HostBuffer(1000).bytes(), 1000u);
}

// A buffer asking for huge pages starts on a 2 MiB boundary (so that whole huge pages can back it)
// and is zeroed like any other, also past a 2 MiB boundary and up to its last byte.
TEST(HostBuffer, HugePagesStartOnTwoMiBAndAreZeroed) {
  const size_t bytes = (size_t(5) << 20) + 3;
  const HostBuffer buffer(bytes, HostPages::huge);
  EXPECT_EQ(buffer.bytes(), bytes);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer.data()) % (size_t(2) << 20), 0u);
  const unsigned char* at = static_cast<const unsigned char*>(buffer.data());
  size_t nonzero = 0;
  for (size_t i = 0; i < bytes; ++i) nonzero += at[i] != 0;
  EXPECT_EQ(nonzero, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(HostBuffer(100, HostPages::huge).data()) % (size_t(2) << 20), 0u);
}

TEST(DurableFile, FailedAtomicWriteLeavesTheOldFileAndNoTemporary) {
  // A failed write left PATH.tmp behind (on a full disk, more of what filled it).
  const std::filesystem::path dir = t6::testing::scratch_dir("durable_file");
  std::filesystem::create_directories(dir / "target_is_a_directory");
  try {
    write_file_atomically(dir / "target_is_a_directory", "new");
    ADD_FAILURE() << "writing over a directory did not fail";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("target_is_a_directory"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "target_is_a_directory.tmp"));
  EXPECT_TRUE(std::filesystem::is_directory(dir / "target_is_a_directory"));
  write_file_atomically(dir / "file", "new");
  std::ifstream in(dir / "file");
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), "new");
}
