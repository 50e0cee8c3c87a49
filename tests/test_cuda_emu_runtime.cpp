// ctest-labels: gpu
// ctest-requires: T6_CUDA_EMU
// The emulated GPU's runtime (src/cuda_emu): device memory the host cannot read, stream ordering
// (the legacy stream does not wait for a non-blocking one), events ordering two streams, copies and
// their direction checks, T6_EMU_DEVICES, the sticky launch failure a DeviceFault leaves, and the
// allocation and synchronisation counters.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cuda_emu/device_work.h"
#include "cuda_emu_counters.h"

namespace {

// Two emulated devices, whatever the caller's environment (read at the first CUDA call).
const bool two_devices = setenv("T6_EMU_DEVICES", "2", 1) == 0;

std::vector<int32_t> download(const int32_t* device, size_t count) {
  std::vector<int32_t> values(count);
  EXPECT_EQ(cudaMemcpy(values.data(), device, count * sizeof(int32_t), cudaMemcpyDeviceToHost), cudaSuccess);
  return values;
}

int32_t* upload(const std::vector<int32_t>& values) {
  void* device = nullptr;
  EXPECT_EQ(cudaMalloc(&device, values.size() * sizeof(int32_t)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(device, values.data(), values.size() * sizeof(int32_t), cudaMemcpyHostToDevice), cudaSuccess);
  return static_cast<int32_t*>(device);
}

const std::vector<int32_t> kOld = {1, 2, 3, 4}, kNew = {-5, 6, -7, 8};

}  // namespace

TEST(CudaEmuRuntimeDeathTest, HostReadOfADevicePointerCrashes) {
  ASSERT_TRUE(two_devices);
  int32_t* device = upload(kOld);
  EXPECT_EXIT({ std::exit(*static_cast<volatile int32_t*>(device) == 1 ? 3 : 4); }, ::testing::KilledBySignal(SIGSEGV),
              "t6 emulated GPU: host code accessed device memory at 0x[0-9a-f]+: a device pointer dereferenced on "
              "the host");
  // Device work may read it; the host sees it through a copy.
  int32_t seen = 0;
  t6::cuda_emu::enqueue(nullptr, "a read in device work", [&] { seen = device[2]; });
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(seen, 3);
  cudaFree(device);
}

TEST(CudaEmuRuntime, ACopyBeforeItsNonBlockingStreamIsSynchronisedSeesStaleData) {
  int32_t* device = upload(kOld);
  int32_t* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(reinterpret_cast<void**>(&pinned), kNew.size() * sizeof(int32_t)), cudaSuccess);
  std::copy(kNew.begin(), kNew.end(), pinned);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(device, pinned, kNew.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream), cudaSuccess);
  EXPECT_EQ(download(device, kOld.size()), kOld) << "cudaMemcpy must not wait for a non-blocking stream";
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(download(device, kOld.size()), kNew);
  cudaStreamDestroy(stream);
  cudaFreeHost(pinned);
  cudaFree(device);
}

TEST(CudaEmuRuntime, TheLegacyStreamWaitsForABlockingStream) {
  int32_t* device = upload(kOld);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(device, 0, kOld.size() * sizeof(int32_t), stream), cudaSuccess);
  EXPECT_EQ(download(device, kOld.size()), std::vector<int32_t>(kOld.size(), 0));
  cudaStreamDestroy(stream);
  cudaFree(device);
}

TEST(CudaEmuRuntime, AsyncCopiesWithPageableMemoryAreSynchronousAndWithPinnedMemoryQueued) {
  int32_t* device = upload(kOld);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(device, 0, sizeof(int32_t), stream), cudaSuccess);
  std::vector<int32_t> pageable(kOld.size(), 99);
  ASSERT_EQ(cudaMemcpyAsync(pageable.data(), device, kOld.size() * sizeof(int32_t), cudaMemcpyDefault, stream), cudaSuccess);
  EXPECT_EQ(pageable, (std::vector<int32_t>{0, 2, 3, 4}));
  int32_t* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(reinterpret_cast<void**>(&pinned), sizeof(int32_t)), cudaSuccess);
  *pinned = 99;
  ASSERT_EQ(cudaMemcpyAsync(pinned, device + 1, sizeof(int32_t), cudaMemcpyDeviceToHost, stream), cudaSuccess);
  EXPECT_EQ(*pinned, 99) << "a copy into pinned memory is queued";
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(*pinned, 2);
  cudaStreamDestroy(stream);
  cudaFreeHost(pinned);
  cudaFree(device);
}

// Stream 1 writes A, records, then overwrites A; stream 2 waits for the record and copies A to B.
// B must hold the first write: the wait runs stream 1 up to the record and no further.
TEST(CudaEmuRuntime, AnEventOrdersTwoStreamsAtItsRecord) {
  int32_t* a = upload(kOld);
  int32_t* b = upload({0, 0, 0, 0});
  cudaStream_t first = nullptr, second = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&first, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&second, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t written = nullptr, start = nullptr;
  ASSERT_EQ(cudaEventCreate(&written), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(start, first), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(a, 0x11, kOld.size() * sizeof(int32_t), first), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(written, first), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(a, 0x22, kOld.size() * sizeof(int32_t), first), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(second, written, 0), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(b, a, kOld.size() * sizeof(int32_t), cudaMemcpyDeviceToDevice, second), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(second), cudaSuccess);
  EXPECT_EQ(download(b, kOld.size()), std::vector<int32_t>(kOld.size(), 0x11111111));
  EXPECT_EQ(download(a, kOld.size()), std::vector<int32_t>(kOld.size(), 0x11111111)) << "stream 1 ran past the record";
  float milliseconds = -1.0f;
  EXPECT_EQ(cudaEventElapsedTime(&milliseconds, start, written), cudaSuccess);
  EXPECT_GE(milliseconds, 0.0f);
  ASSERT_EQ(cudaEventSynchronize(written), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(first), cudaSuccess);
  EXPECT_EQ(download(a, kOld.size()), std::vector<int32_t>(kOld.size(), 0x22222222));
  cudaEventDestroy(written);
  cudaEventDestroy(start);
  cudaStreamDestroy(first);
  cudaStreamDestroy(second);
  cudaFree(a);
  cudaFree(b);
}

TEST(CudaEmuRuntime, DevicesBeyondT6EmuDevicesAreInvalid) {
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  ASSERT_EQ(count, 2);
  EXPECT_EQ(cudaSetDevice(1), cudaSuccess);
  int current = -1;
  EXPECT_EQ(cudaGetDevice(&current), cudaSuccess);
  EXPECT_EQ(current, 1);
  EXPECT_EQ(cudaSetDevice(2), cudaErrorInvalidDevice);
  EXPECT_STREQ(cudaGetErrorString(cudaErrorInvalidDevice),
               "cudaSetDevice: device 2 does not exist: T6_EMU_DEVICES=2 emulates devices 0 to 1 (invalid device ordinal)");
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  cudaDeviceProp properties{};
  EXPECT_EQ(cudaGetDeviceProperties(&properties, 2), cudaErrorInvalidDevice);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
}

TEST(CudaEmuRuntime, PropertiesAreThoseOfAnH100) {
  cudaDeviceProp properties{};
  ASSERT_EQ(cudaGetDeviceProperties(&properties, 1), cudaSuccess);
  EXPECT_NE(std::string(properties.name).find("emulated"), std::string::npos);
  EXPECT_EQ(properties.multiProcessorCount, 132);
  EXPECT_EQ(properties.sharedMemPerMultiprocessor, size_t(228) << 10);
  EXPECT_EQ(properties.sharedMemPerBlockOptin, size_t(227) << 10);
  EXPECT_EQ(properties.sharedMemPerBlock, size_t(48) << 10);
  EXPECT_EQ(properties.totalGlobalMem, size_t(80) << 30);
  EXPECT_EQ(properties.major * 10 + properties.minor, 90);
  EXPECT_EQ(properties.warpSize, 32);
  int value = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0), cudaSuccess);
  EXPECT_EQ(value, 227 << 10);
  // The dynamic shared memory limit is per kernel, 48 KiB until raised, never above 227 KiB.
  static const char kernel = 0;
  EXPECT_EQ(t6::cuda_emu::max_dynamic_shared_bytes(&kernel), size_t(48) << 10);
  EXPECT_EQ(cudaFuncSetAttribute(&kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 100 << 10), cudaSuccess);
  EXPECT_EQ(t6::cuda_emu::max_dynamic_shared_bytes(&kernel), size_t(100) << 10);
  EXPECT_EQ(cudaFuncSetAttribute(&kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (227 << 10) + 1),
            cudaErrorInvalidValue);
  EXPECT_EQ(t6::cuda_emu::max_dynamic_shared_bytes(&kernel), size_t(100) << 10);
  cudaGetLastError();
}

TEST(CudaEmuRuntime, AllocationIsFirstFitAlignedAndBoundedBy80GiB) {
  size_t free_before = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
  EXPECT_EQ(total, size_t(80) << 30);
  void *first = nullptr, *second = nullptr, *again = nullptr;
  ASSERT_EQ(cudaMalloc(&first, 10), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&second, 300), cudaSuccess);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 256, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(second) % 256, 0u);
  size_t free_after = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
  EXPECT_EQ(free_before - free_after, 256u + 512u);
  ASSERT_EQ(cudaFree(first), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&again, 200), cudaSuccess);
  EXPECT_EQ(again, first) << "first fit reuses the lowest gap";
  void* huge = nullptr;
  EXPECT_EQ(cudaMalloc(&huge, free_after + 1), cudaErrorMemoryAllocation);
  EXPECT_EQ(huge, nullptr);
  cudaGetLastError();
  ASSERT_EQ(cudaMalloc(&huge, free_after), cudaSuccess) << "exactly the rest fits";
  cudaFree(huge);
  cudaFree(again);
  cudaFree(second);
}

TEST(CudaEmuRuntime, HostOnlyAndDeviceOnlyCallsRefuseTheOtherKindOfPointer) {
  int32_t* device = upload(kOld);
  std::vector<int32_t> host(kOld.size());
  EXPECT_EQ(cudaMemcpy(host.data(), device, 16, cudaMemcpyHostToDevice), cudaErrorInvalidMemcpyDirection);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidMemcpyDirection))
                .find("cudaMemcpy: kind cudaMemcpyHostToDevice, but the source"),
            std::string::npos)
      << cudaGetErrorString(cudaErrorInvalidMemcpyDirection);
  EXPECT_EQ(cudaFreeHost(device), cudaErrorInvalidValue);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidValue)).find("cudaFreeHost: "), std::string::npos);
  EXPECT_EQ(cudaFree(host.data()), cudaErrorInvalidValue);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidValue)).find("cudaFree: "), std::string::npos);
  EXPECT_EQ(cudaMemcpy(host.data(), device, 17, cudaMemcpyDeviceToHost), cudaErrorInvalidValue) << "past the end";
  EXPECT_EQ(cudaMemset(host.data(), 0, 4), cudaErrorInvalidValue);
  cudaGetLastError();
  cudaFree(device);
}

TEST(CudaEmuRuntime, ADeviceFaultIsAStickyLaunchFailureUntilReset) {
  int32_t* device = upload(kOld);
  t6::cuda_emu::enqueue(nullptr, "stuck_kernel", [] {
    throw t6::cuda_emu::DeviceFault("block (1,0,0): threads 0-31 wait at __syncthreads, threads 32-63 returned");
  });
  bool later_work_ran = false;
  t6::cuda_emu::enqueue(nullptr, "later", [&] { later_work_ran = true; });
  EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  EXPECT_FALSE(later_work_ran) << "work after a launch failure is dropped";
  EXPECT_STREQ(cudaGetErrorString(cudaErrorLaunchFailure),
               "unspecified launch failure: stuck_kernel: block (1,0,0): threads 0-31 wait at __syncthreads, threads "
               "32-63 returned");
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure) << "sticky";
  std::vector<int32_t> host(kOld.size());
  EXPECT_EQ(cudaMemcpy(host.data(), device, 16, cudaMemcpyDeviceToHost), cudaErrorLaunchFailure);
  ASSERT_EQ(cudaDeviceReset(), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(download(device, kOld.size()), kOld);
  cudaFree(device);
}

TEST(CudaEmuRuntime, CountsAllocationsAndHostSynchronisations) {
  using t6::cuda_emu::runtime_counters;
  void* device = nullptr;
  void* pinned = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t event = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&event), cudaSuccess);
  t6::cuda_emu::reset_runtime_counters();
  ASSERT_EQ(cudaMalloc(&device, 64), cudaSuccess);
  ASSERT_EQ(cudaMallocHost(&pinned, 64), cudaSuccess);
  EXPECT_EQ(runtime_counters().allocations, 2u);
  EXPECT_EQ(runtime_counters().synchronizations, 0u);
  ASSERT_EQ(cudaMemsetAsync(device, 0, 64, stream), cudaSuccess);                                  // queued
  ASSERT_EQ(cudaMemcpyAsync(pinned, device, 64, cudaMemcpyDeviceToHost, stream), cudaSuccess);     // queued
  ASSERT_EQ(cudaMemcpy(static_cast<char*>(device) + 32, device, 32, cudaMemcpyDeviceToDevice), cudaSuccess);  // queued
  ASSERT_EQ(cudaEventRecord(event, stream), cudaSuccess);
  EXPECT_EQ(runtime_counters().synchronizations, 0u);
  ASSERT_EQ(cudaEventSynchronize(event), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<char> host(64);
  ASSERT_EQ(cudaMemcpy(host.data(), device, 64, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(device, host.data(), 64, cudaMemcpyHostToDevice, stream), cudaSuccess);  // pageable
  EXPECT_EQ(runtime_counters().synchronizations, 5u);
  EXPECT_EQ(runtime_counters().allocations, 2u);
  t6::cuda_emu::reset_runtime_counters();
  EXPECT_EQ(runtime_counters().synchronizations, 0u);
  EXPECT_EQ(runtime_counters().allocations, 0u);
  cudaEventDestroy(event);
  cudaStreamDestroy(stream);
  cudaFreeHost(pinned);
  cudaFree(device);
}

TEST(CudaEmuRuntimeDeathTest, AMalformedDeviceCountStopsTheRun) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the child reads T6_EMU_DEVICES afresh
  EXPECT_EXIT(
      {
        setenv("T6_EMU_DEVICES", "two", 1);
        int count = 0;
        cudaGetDeviceCount(&count);
      },
      ::testing::ExitedWithCode(2), "T6_EMU_DEVICES='two' is not a device count from 0 to 16");
}

