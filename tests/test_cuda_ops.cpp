// ctest-labels: gpu
// Every CUDA op (kernels/cuda/) against its CPU twin on random inputs with odd shapes, through the
// one op set of kernels/ops.h: the same call runs on the GPU because its tensors live there.
// Skips itself where there is no GPU (and in a build without CUDA).
//
// How the tolerances are set: the inputs are rounded to bf16 once on the host, and both backends
// get the same rounded values (the CPU reference in fp32 on them), so the differences measured are
// the kernels' own: fp32 summation order (relative 1e-5 and below), outputs stored as bf16 (half a
// bf16 ulp, 2^-9 relative, per element), and in attention the bf16 probabilities and dS fed to the
// tensor cores (relative errors of a few 2^-9 summed over a row). Errors are measured as
// ‖gpu − cpu‖ / ‖cpu‖ over the whole tensor (METHOD.md: bf16 operands land between 1e-3 and 1e-2)
// plus, where the value is exact arithmetic, bit equality. Every output starts as NaN (0xFF bytes),
// so an element a kernel forgets to write fails the test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <iterator>
#include <string>
#include <random>
#include <vector>

#include "core/arena.h"
#include "core/bf16.h"
#include "core/device_memory.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#ifdef T6_CUDA_EMU
#include "cuda_emu_counters.h"
#include "cuda_emu_schedule.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/scratch_needs.h"
#endif

using namespace t6;

namespace {

constexpr double kFp32Order = 1e-5;       // fp32 results that differ only in summation order
constexpr double kBf16Output = 4e-3;      // results stored as bf16: 2^-9 per element, margin for order
constexpr double kAttention = 1.5e-2;     // bf16 P and dS on the tensor cores (see the header)

std::mt19937_64& rng() {
  static std::mt19937_64 generator(20261201);
  return generator;
}

// Host fp32 values uniform in [-scale, scale], rounded to bf16 so both backends see the same inputs.
HostTensor random_values(Shape shape, float scale = 1.0f) {
  HostTensor x(shape, DType::F32);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = round_to_bf16(uniform(rng()));
  return x;
}

HostTensor ids(int64_t count, int64_t vocab) {
  HostTensor x({count}, DType::I32);
  std::uniform_int_distribution<int32_t> pick(0, int32_t(vocab - 1));
  for (int64_t i = 0; i < count; ++i) x.data<int32_t>()[i] = pick(rng());
  return x;
}

HostTensor copy_of(const Tensor& host) {
  HostTensor copy(host.shape(), host.dtype());
  std::memcpy(copy.view().raw(), host.raw(), host.bytes());
  return copy;
}

// A device tensor owning its memory.
struct DeviceTensor {
  DeviceBuffer buffer;
  Tensor view;
  operator const Tensor&() const { return view; }
};

// x (host, F32 or I32) on the GPU as `dtype` (F32, BF16 or I32).
DeviceTensor upload(const HostTensor& x, DType dtype = DType::F32) {
  DeviceTensor device{DeviceBuffer(size_t(x.numel()) * dtype_size(dtype)), {}};
  device.view = device.buffer.as(x.shape(), dtype);
  if (dtype == DType::BF16) {
    HostTensor bits(x.shape(), DType::U16);
    for (int64_t i = 0; i < x.numel(); ++i) bits.data<uint16_t>()[i] = float_to_bf16_bits(x.data<float>()[i]);
    copy_tensor(device.view, Tensor(bits.view().raw(), x.shape(), DType::BF16));
  } else {
    copy_tensor(device.view, x);
  }
  return device;
}

// An output on the GPU whose every byte is 0xFF (NaN in F32 and BF16).
DeviceTensor poisoned(Shape shape, DType dtype = DType::F32) {
  DeviceTensor device{DeviceBuffer(size_t(shape.numel()) * dtype_size(dtype)), {}};
  device.view = device.buffer.as(shape, dtype);
  std::vector<unsigned char> bytes(device.view.bytes(), 0xFF);
  copy_tensor(device.view, Tensor(bytes.data(), shape, dtype));
  return device;
}

// A device F32 or BF16 tensor as host F32.
HostTensor download(const Tensor& device) {
  HostTensor out(device.shape(), DType::F32);
  if (device.dtype() == DType::BF16) {
    HostTensor bits(device.shape(), DType::U16);
    copy_tensor(Tensor(bits.view().raw(), device.shape(), DType::BF16), device);
    for (int64_t i = 0; i < out.numel(); ++i) out.data<float>()[i] = bf16_bits_to_float(bits.data<uint16_t>()[i]);
  } else {
    copy_tensor(out.view(), device);
  }
  return out;
}

// ‖a − b‖ / ‖b‖ (b the CPU reference); NaN anywhere in a gives NaN, which fails every bound.
double relative_error(const Tensor& a, const Tensor& b) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    const double x = a.data<float>()[i], y = b.data<float>()[i];
    diff += (x - y) * (x - y);
    norm += y * y;
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

#define EXPECT_CLOSE(gpu_device, cpu_host, tolerance)                                \
  do {                                                                               \
    const HostTensor t6_gpu = download(gpu_device);                                  \
    const double t6_error = relative_error(t6_gpu, cpu_host);                        \
    EXPECT_LE(t6_error, tolerance) << #gpu_device " vs the CPU twin";                \
  } while (0)

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU (or a build without CUDA): the CUDA ops are not run";
    cuda_select_device(0);
  }
};

}  // namespace

// ---- matmul (cuBLASLt) ---------------------------------------------------------------------------

TEST_F(CudaOps, MatmulAllTransposesBf16InputsFp32AndBf16OutputsWithBeta) {
  const int64_t M = 17, K = 33, N = 24;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "transpose_a " << ta << ", transpose_b " << tb);
      const HostTensor a = random_values(ta ? Shape{K, M} : Shape{M, K});
      const HostTensor b = random_values(tb ? Shape{N, K} : Shape{K, N});
      const HostTensor c0 = random_values({M, N});
      // beta = 1 onto an fp32 gradient: the micro-batch accumulation of a linear layer's dW.
      HostTensor expected = copy_of(c0);
      ops::matmul(expected.view(), a, b, ta, tb, 0.5f, 1.0f);
      DeviceTensor out = upload(c0);
      ops::matmul(out.view, upload(a, DType::BF16), upload(b, DType::BF16), ta, tb, 0.5f, 1.0f);
      EXPECT_CLOSE(out.view, expected, kFp32Order);
      // bf16 output, beta = 0: the forward of a layer writing a bf16 activation.
      HostTensor plain({M, N}, DType::F32);
      ops::matmul(plain.view(), a, b, ta, tb, 1.0f, 0.0f);
      DeviceTensor bf16_out = poisoned({M, N}, DType::BF16);
      ops::matmul(bf16_out.view, upload(a, DType::BF16), upload(b, DType::BF16), ta, tb, 1.0f, 0.0f);
      EXPECT_CLOSE(bf16_out.view, plain, kBf16Output);
      // fp32 × fp32 (no TF32: fp32 accumulation of fp32 products).
      DeviceTensor fp32_out = poisoned({M, N});
      ops::matmul(fp32_out.view, upload(a), upload(b), ta, tb, 1.0f, 0.0f);
      EXPECT_CLOSE(fp32_out.view, plain, kFp32Order);
    }
  }
}

TEST_F(CudaOps, MatmulRepeatsBitForBit) {
  const HostTensor a = random_values({256, 384}), b = random_values({512, 384});
  const DeviceTensor da = upload(a, DType::BF16), db = upload(b, DType::BF16);
  DeviceTensor first = poisoned({256, 512}), second = poisoned({256, 512});
  ops::matmul(first.view, da, db, false, true);
  ops::matmul(second.view, da, db, false, true);
  EXPECT_TRUE(bitwise_equal(download(first.view), download(second.view))) << "the algorithm must be fixed per shape";
}

// ---- element-wise and reductions ------------------------------------------------------------------

TEST_F(CudaOps, AddAndSwigluForwardBackward) {
  const Shape shape{7, 151};  // an odd element count, not a multiple of any block
  const HostTensor a = random_values(shape, 3.0f), b = random_values(shape), dout = random_values(shape);
  HostTensor sum(shape, DType::F32), out(shape, DType::F32), da(shape, DType::F32), db(shape, DType::F32);
  ops::add(sum.view(), a, b);
  ops::swiglu_forward(out.view(), a, b);
  ops::swiglu_backward(da.view(), db.view(), dout, a, b);
  const DeviceTensor ga = upload(a, DType::BF16), gb = upload(b, DType::BF16), gdout = upload(dout, DType::BF16);
  DeviceTensor gsum = poisoned(shape), gout = poisoned(shape, DType::BF16), gda = poisoned(shape), gdb = poisoned(shape);
  ops::add(gsum.view, ga, gb);
  ops::swiglu_forward(gout.view, ga, gb);
  ops::swiglu_backward(gda.view, gdb.view, gdout, ga, gb);
  EXPECT_TRUE(bitwise_equal(download(gsum.view), sum)) << "a sum of two bf16 values is exact in fp32";
  EXPECT_CLOSE(gout.view, out, kBf16Output);
  EXPECT_CLOSE(gda.view, da, kFp32Order);  // fp32 outputs: only expf differs
  EXPECT_CLOSE(gdb.view, db, kFp32Order);
}

TEST_F(CudaOps, SumOfSquaresMatchesInDoubleAndRepeats) {
  const HostTensor x = random_values({1000003});
  const DeviceTensor gx = upload(x);
  const double cpu = ops::sum_of_squares({x.view()}), gpu = ops::sum_of_squares({gx.view});
  EXPECT_NEAR(gpu, cpu, 1e-12 * cpu) << "both sum exact squares of fp32 values in double";
  EXPECT_EQ(gpu, ops::sum_of_squares({gx.view})) << "no atomics: the same bits every time";
}

TEST_F(CudaOps, FillZero) {
  DeviceTensor x = poisoned({5, 97}, DType::BF16);
  ops::fill_zero(x.view);
  const HostTensor back = download(x.view);
  for (int64_t i = 0; i < back.numel(); ++i) ASSERT_EQ(back.data<float>()[i], 0.0f);
}

// The fp32 → bf16 cast against the CPU twin (float_to_bf16_bits): round to nearest even, bit for
// bit, on values that are not bf16 already, the ties of both parities, ±inf, the largest float
// (which rounds to inf) and subnormals. NaN is left out: CUDA's NaN is canonical (0x7fff).
TEST_F(CudaOps, CastRoundsFp32ToBf16BitForBitAsTheCpu) {
  HostTensor x({5, 97}, DType::F32);
  std::uniform_real_distribution<float> uniform(-4.0f, 4.0f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = uniform(rng());  // not rounded: the cast must round
  const float specials[] = {1.0f + 0x1p-8f,  1.0f + 3 * 0x1p-8f, -1.0f - 0x1p-8f, INFINITY, -INFINITY,
                            3.4028235e38f,  1e-40f,             -0.0f,           65504.0f};
  for (size_t i = 0; i < std::size(specials); ++i) x.data<float>()[i] = specials[i];
  HostTensor expected(x.shape(), DType::BF16);
  ops::cast(expected.view(), x);
  DeviceTensor out = poisoned(x.shape(), DType::BF16);
  ops::cast(out.view, upload(x));
  HostTensor bits(x.shape(), DType::U16);
  copy_tensor(Tensor(bits.view().raw(), x.shape(), DType::BF16), out.view);
  EXPECT_EQ(std::memcmp(bits.view().raw(), expected.view().raw(), expected.view().bytes()), 0)
      << "the device's bf16 bits differ from float_to_bf16_bits";
  EXPECT_EQ(bits.data<uint16_t>()[0], 0x3f80) << "1 + 2^-8 is a tie: to even, 1.0";
  EXPECT_EQ(bits.data<uint16_t>()[1], 0x3f82) << "1 + 3·2^-8 is a tie: to even, 1 + 2^-6";
  // And back: bf16 → fp32 is exact.
  DeviceTensor widened = poisoned(x.shape());
  ops::cast(widened.view, out.view);
  const HostTensor back = download(widened.view), narrowed = download(out.view);
  EXPECT_TRUE(bitwise_equal(back, narrowed));
}

// split_columns and pack_columns against the CPU twin, bit for bit (they only move values): the
// forward's bf16 GEMM output split into bf16 factors of TPA-like widths (A_q 5·3, A_k 5·1, B_q
// 3·16, B_k 1·16 over 37 rows), and the backward's fp32 factor gradients packed into the bf16
// operand, rounded as cast rounds.
TEST_F(CudaOps, ColumnBlocksSplitAndPackAsTheCpuConvertingFp32ToBf16) {
  const int64_t rows = 37;
  const std::vector<Shape> shapes = {{rows, 5, 3}, {rows, 5, 1}, {rows, 3, 16}, {rows, 1, 16}};
  const int64_t width = 15 + 5 + 48 + 16;
  const HostTensor packed = random_values({rows, width});  // bf16 values: the bf16 upload is exact
  std::vector<HostTensor> expected;
  std::vector<Tensor> expected_views;
  std::vector<DeviceTensor> parts;
  std::vector<Tensor> part_views;
  for (const Shape& shape : shapes) {
    expected.emplace_back(shape, DType::F32);
    expected_views.push_back(expected.back());
    parts.push_back(poisoned(shape, DType::BF16));
    part_views.push_back(parts.back().view);
  }
  ops::split_columns(expected_views, packed);
  ops::split_columns(part_views, upload(packed, DType::BF16));
  for (size_t i = 0; i < shapes.size(); ++i)
    EXPECT_TRUE(bitwise_equal(download(part_views[i]), expected[i])) << "part " << i << " of the split";

  // Unrounded fp32 gradients: the pack must round them as cast does.
  std::vector<HostTensor> gradients;
  std::vector<DeviceTensor> device_gradients;
  std::vector<Tensor> gradient_views, device_gradient_views;
  std::uniform_real_distribution<float> uniform(-4.0f, 4.0f);
  for (const Shape& shape : shapes) {
    gradients.emplace_back(shape, DType::F32);
    for (int64_t i = 0; i < gradients.back().numel(); ++i) gradients.back().data<float>()[i] = uniform(rng());
    gradient_views.push_back(gradients.back());
    device_gradients.push_back(upload(gradients.back()));
    device_gradient_views.push_back(device_gradients.back().view);
  }
  HostTensor packed_gradients({rows, width}, DType::F32), expected_bits({rows, width}, DType::BF16);
  ops::pack_columns(packed_gradients, gradient_views);
  ops::cast(expected_bits.view(), packed_gradients);
  DeviceTensor device_packed = poisoned({rows, width}, DType::BF16);
  ops::pack_columns(device_packed.view, device_gradient_views);
  HostTensor bits({rows, width}, DType::U16);
  copy_tensor(Tensor(bits.view().raw(), {rows, width}, DType::BF16), device_packed.view);
  EXPECT_EQ(std::memcmp(bits.view().raw(), expected_bits.view().raw(), expected_bits.view().bytes()), 0)
      << "the packed bf16 gradients differ from the CPU's packed fp32 ones cast to bf16";
}

// Σ x² and the non-finite count over 70 tensors (two launches of 64), odd sizes, fp32 and bf16
// mixed, against the CPU twin on the same values. Both sum exact squares of fp32 values in double,
// in different orders: relative 1e-12 (about 2^-40, far above double rounding over 10^5 terms,
// far below any lost or doubled tensor). The counts are exact. No host synchronisation.
TEST_F(CudaOps, TensorListStatisticsSumsEveryTensorAndCountsNonFiniteInOnePass) {
  std::vector<HostTensor> host;
  std::vector<DeviceTensor> device;
  for (int i = 0; i < 70; ++i) {
    host.push_back(random_values({1 + (i * 37) % 1501}, 1.0f + i % 5));
    device.push_back(upload(host.back(), i % 3 == 0 ? DType::BF16 : DType::F32));
  }
  std::vector<Tensor> host_views, device_views;
  for (const HostTensor& x : host) host_views.push_back(x.view());
  for (const DeviceTensor& x : device) device_views.push_back(x.view);
  HostTensor expected({2}, DType::F64);
  ops::tensor_list_statistics(expected.view(), host_views);
  DeviceTensor statistics{DeviceBuffer(2 * sizeof(double)), {}};
  statistics.view = statistics.buffer.as({2}, DType::F64);
  // The host-valued norm first, as a trainer's first step: it may grow the scratch (the test
  // ReservedScratch... counts its one synchronisation once the scratch is planned).
  const double norm_squared = ops::sum_of_squares(device_views);
#ifdef T6_CUDA_EMU
  cuda_emu::reset_runtime_counters();
#endif
  ops::tensor_list_statistics(statistics.view, device_views);
#ifdef T6_CUDA_EMU
  EXPECT_EQ(cuda_emu::runtime_counters().synchronizations, 0u) << "the statistics stay on the device";
  EXPECT_EQ(cuda_emu::runtime_counters().allocations, 0u);
#endif
  double got[2] = {0, 0};
  copy_tensor(Tensor(got, {2}, DType::F64), statistics.view);
  EXPECT_NEAR(got[0], expected.data<double>()[0], 1e-12 * expected.data<double>()[0]);
  EXPECT_EQ(got[1], 0.0);
  EXPECT_EQ(expected.data<double>()[1], 0.0);
  EXPECT_EQ(norm_squared, got[0]) << "the same kernels, the same order, the same bits";
  // NaN, +inf and −inf planted in three tensors, one of them bf16 and one in the second launch.
  const float bad[3] = {NAN, INFINITY, -INFINITY};
  const int where[3] = {0, 5, 67};
  for (int i = 0; i < 3; ++i) {
    host[where[i]].data<float>()[host[where[i]].numel() - 1] = bad[i];
    device[where[i]] = upload(host[where[i]], where[i] % 3 == 0 ? DType::BF16 : DType::F32);
    device_views[where[i]] = device[where[i]].view;
  }
  ops::tensor_list_statistics(expected.view(), host_views);
  ops::tensor_list_statistics(statistics.view, device_views);
  copy_tensor(Tensor(got, {2}, DType::F64), statistics.view);
  EXPECT_EQ(expected.data<double>()[1], 3.0);
  EXPECT_EQ(got[1], 3.0) << "NaN, +inf and −inf each counted once";
  EXPECT_TRUE(std::isnan(got[0]));
  ops::tensor_list_statistics(statistics.view, {});
  copy_tensor(Tensor(got, {2}, DType::F64), statistics.view);
  EXPECT_EQ(got[0], 0.0);
  EXPECT_EQ(got[1], 0.0);
}

// ---- RMSNorm, RoPE ----------------------------------------------------------------------------------

TEST_F(CudaOps, RmsNormForwardBackwardFp32Statistics) {
  for (int64_t d : {97, 768}) {
    SCOPED_TRACE(::testing::Message() << "d " << d);
    const int64_t rows = 17;
    const HostTensor x = random_values({rows, d}, 2.0f), dout = random_values({rows, d}), dx0 = random_values({rows, d});
    HostTensor out({rows, d}, DType::F32), rstd({rows}, DType::F32), dx = copy_of(dx0);
    ops::rmsnorm_forward(out.view(), rstd.view(), x);
    ops::rmsnorm_backward(dx.view(), dout, x, rstd);
    const DeviceTensor gx = upload(x, DType::BF16);
    DeviceTensor gout = poisoned({rows, d}, DType::BF16), grstd = poisoned({rows}), gdx = upload(dx0);
    ops::rmsnorm_forward(gout.view, grstd.view, gx);
    ops::rmsnorm_backward(gdx.view, upload(dout, DType::BF16), gx, grstd.view);
    EXPECT_CLOSE(gout.view, out, kBf16Output);
    EXPECT_CLOSE(grstd.view, rstd, kFp32Order);
    EXPECT_CLOSE(gdx.view, dx, kFp32Order);  // accumulated onto dx0 in fp32
  }
}

// MLA's latent norms: bf16 x, weight and dout as the model holds them, F32 statistics and
// gradients. out is stored as bf16 (kBf16Output); rstd, dx and dweight are fp32 sums over a row
// (dx) or over the 17 rows in row order (dweight), the CPU's order too: kFp32Order.
TEST_F(CudaOps, WeightedRmsNormForwardBackwardWithTheWeightGradient) {
  for (int64_t d : {97, 512}) {
    SCOPED_TRACE(::testing::Message() << "d " << d);
    const int64_t rows = 17;
    const HostTensor x = random_values({rows, d}, 2.0f), weight = random_values({d}, 1.5f), dout = random_values({rows, d});
    const HostTensor dx0 = random_values({rows, d}), dweight0 = random_values({d});
    HostTensor out({rows, d}, DType::F32), rstd({rows}, DType::F32), dx = copy_of(dx0), dweight = copy_of(dweight0);
    ops::weighted_rmsnorm_forward(out.view(), rstd.view(), x, weight);
    ops::weighted_rmsnorm_backward(dx.view(), dweight.view(), dout, x, rstd, weight);
    const DeviceTensor gx = upload(x, DType::BF16), gweight = upload(weight, DType::BF16);
    DeviceTensor gout = poisoned({rows, d}, DType::BF16), grstd = poisoned({rows}), gdx = upload(dx0);
    DeviceTensor gdweight = upload(dweight0);
    ops::weighted_rmsnorm_forward(gout.view, grstd.view, gx, gweight);
    ops::weighted_rmsnorm_backward(gdx.view, gdweight.view, upload(dout, DType::BF16), gx, grstd.view, gweight);
    EXPECT_CLOSE(gout.view, out, kBf16Output);
    EXPECT_CLOSE(grstd.view, rstd, kFp32Order);
    EXPECT_CLOSE(gdx.view, dx, kFp32Order);
    EXPECT_CLOSE(gdweight.view, dweight, kFp32Order);
  }
}

// MLA's k/v split: copies (bit-exact in bf16 and fp32) and dk_pe, a sum over the 5 heads in head
// order in fp32 on both backends: bit-exact too.
TEST_F(CudaOps, MlaSplitKvCopiesExactlyAndSumsTheSharedKeyGradientOverHeads) {
  for (int64_t Dn : {8, 64}) {
    SCOPED_TRACE(::testing::Message() << "Dn " << Dn);
    const int64_t B = 2, T = 17, H = 5, Dr = 8, Dv = 24;
    const HostTensor kv = random_values({B, T, H, Dn + Dv}), k_pe = random_values({B, T, 1, Dr});
    const HostTensor dk = random_values({B, T, H, Dn + Dr}), dv = random_values({B, T, H, Dv});
    HostTensor k({B, T, H, Dn + Dr}, DType::F32), v({B, T, H, Dv}, DType::F32);
    HostTensor dkv({B, T, H, Dn + Dv}, DType::F32), dk_pe({B, T, 1, Dr}, DType::F32);
    ops::mla_split_kv_forward(k.view(), v.view(), kv, k_pe);
    ops::mla_split_kv_backward(dkv.view(), dk_pe.view(), dk, dv);
    DeviceTensor gk = poisoned({B, T, H, Dn + Dr}, DType::BF16), gv = poisoned({B, T, H, Dv}, DType::BF16);
    ops::mla_split_kv_forward(gk.view, gv.view, upload(kv, DType::BF16), upload(k_pe, DType::BF16));
    EXPECT_TRUE(bitwise_equal(download(gk.view), k));
    EXPECT_TRUE(bitwise_equal(download(gv.view), v));
    DeviceTensor gdkv = poisoned({B, T, H, Dn + Dv}), gdk_pe = poisoned({B, T, 1, Dr});
    ops::mla_split_kv_backward(gdkv.view, gdk_pe.view, upload(dk), upload(dv));
    EXPECT_TRUE(bitwise_equal(download(gdkv.view), dkv));
    EXPECT_TRUE(bitwise_equal(download(gdk_pe.view), dk_pe)) << "Σ over heads in head order, fp32";
  }
}

TEST_F(CudaOps, RopeForwardAndTransposeWithBf16Tables) {
  for (int64_t D : {8, 64}) {
    SCOPED_TRACE(::testing::Message() << "D " << D);
    const int64_t B = 2, T = 17, R = 3;
    HostTensor cos({T, D / 2}, DType::F32), sin({T, D / 2}, DType::F32);
    ops::rope_tables(cos.view(), sin.view());
    DeviceTensor gcos = poisoned({T, D / 2}, DType::BF16), gsin = poisoned({T, D / 2}, DType::BF16);
    ops::rope_tables(gcos.view, gsin.view);
    EXPECT_TRUE(bitwise_equal(download(gcos.view), cos)) << "the reference's tables are bf16 values";
    EXPECT_TRUE(bitwise_equal(download(gsin.view), sin));
    const HostTensor x = random_values({B, T, R, D});
    HostTensor forward = copy_of(x), backward = copy_of(x);
    ops::rope_forward(forward.view(), cos, sin);
    ops::rope_backward(backward.view(), cos, sin);
    DeviceTensor gforward = upload(x), gbackward = upload(x, DType::BF16);
    ops::rope_forward(gforward.view, gcos.view, gsin.view);
    ops::rope_backward(gbackward.view, gcos.view, gsin.view);
    EXPECT_CLOSE(gforward.view, forward, kFp32Order);
    EXPECT_CLOSE(gbackward.view, backward, kBf16Output);
  }
}

// ---- embedding and cross-entropy, vocabulary split over TP ---------------------------------------

TEST_F(CudaOps, VocabParallelEmbeddingForwardBackwardIsExactAndDeterministic) {
  const int64_t vocab = 97, first_row = 40, local_rows = 57, d = 24, N = 2 * 17;
  const ops::VocabSlice slice{first_row, vocab};
  const HostTensor tokens = ids(N, vocab), table = random_values({local_rows, d});
  const HostTensor dout = random_values({N, d}), dtable0 = random_values({local_rows, d});
  HostTensor out({N, d}, DType::F32), dtable = copy_of(dtable0);
  ops::embedding_forward(out.view(), tokens, table, slice);
  ops::embedding_backward(dtable.view(), dout, tokens, slice);
  const DeviceTensor gtokens = upload(tokens, DType::I32), gtable = upload(table, DType::BF16);
  DeviceTensor gout = poisoned({N, d}, DType::BF16);
  ops::embedding_forward(gout.view, gtokens, gtable, slice);
  EXPECT_TRUE(bitwise_equal(download(gout.view), out)) << "a lookup copies bf16 values";
  const DeviceTensor gdout = upload(dout, DType::BF16);
  DeviceTensor first = upload(dtable0), second = upload(dtable0);
  ops::embedding_backward(first.view, gdout, gtokens, slice);
  ops::embedding_backward(second.view, gdout, gtokens, slice);
  // Sorted by id, equal ids in position order: the CPU's order of additions, so the same bits.
  EXPECT_TRUE(bitwise_equal(download(first.view), dtable));
  EXPECT_TRUE(bitwise_equal(download(first.view), download(second.view)));
}

TEST_F(CudaOps, VocabParallelCrossEntropyPassesOverFp32Logits) {
  const int64_t vocab = 97, first_row = 40, local_vocab = 57, N = 17;
  const ops::VocabSlice slice{first_row, vocab};
  const HostTensor targets = ids(N, vocab), logits = random_values({N, local_vocab}, 8.0f);
  const HostTensor other_max = random_values({N}, 8.0f);  // a row maximum "from the other rank"
  HostTensor exp_logits = copy_of(logits), local_max({N}, DType::F32), sum_exp({N}, DType::F32);
  HostTensor target_logit({N}, DType::F32), row_max({N}, DType::F32), losses({N}, DType::F32);
  ops::cross_entropy_exp_sum(local_max.view(), sum_exp.view(), target_logit.view(), exp_logits.view(), targets, slice);
  for (int64_t n = 0; n < N; ++n)
    row_max.data<float>()[n] = std::max(local_max.data<float>()[n], other_max.data<float>()[n]);
  HostTensor rescaled = copy_of(sum_exp);
  ops::cross_entropy_rescale(rescaled.view(), local_max, row_max);
  ops::cross_entropy_losses(losses.view(), row_max, rescaled, target_logit);
  HostTensor gradient = copy_of(exp_logits);
  ops::cross_entropy_gradient(gradient.view(), targets, local_max, row_max, rescaled, 0.25f, slice);

  const DeviceTensor gtargets = upload(targets, DType::I32), grow_max = upload(row_max);
  DeviceTensor gexp = upload(logits), glocal_max = poisoned({N}), gsum = poisoned({N}), gtarget = poisoned({N});
  ops::cross_entropy_exp_sum(glocal_max.view, gsum.view, gtarget.view, gexp.view, gtargets, slice);
  EXPECT_TRUE(bitwise_equal(download(glocal_max.view), local_max));
  EXPECT_TRUE(bitwise_equal(download(gtarget.view), target_logit)) << "0 where another rank holds the target";
  EXPECT_CLOSE(gexp.view, exp_logits, kFp32Order);
  EXPECT_CLOSE(gsum.view, sum_exp, kFp32Order);
  ops::cross_entropy_rescale(gsum.view, glocal_max.view, grow_max);
  EXPECT_CLOSE(gsum.view, rescaled, kFp32Order);
  DeviceTensor glosses = poisoned({N});
  ops::cross_entropy_losses(glosses.view, grow_max, gsum.view, gtarget.view);
  EXPECT_CLOSE(glosses.view, losses, kFp32Order);
  ops::cross_entropy_gradient(gexp.view, gtargets, glocal_max.view, grow_max, gsum.view, 0.25f, slice);
  EXPECT_CLOSE(gexp.view, gradient, kFp32Order);
}

// ---- TPA contraction, AdamW ----------------------------------------------------------------------

TEST_F(CudaOps, TpaContractionForwardBackwardForRanks1And3) {
  for (int64_t R : {1, 3}) {
    for (int64_t D : {8, 64}) {
      SCOPED_TRACE(::testing::Message() << "R " << R << ", D " << D);
      const int64_t B = 2, T = 17, H = 5;
      const HostTensor A = random_values({B, T, H, R}), factor_B = random_values({B, T, R, D});
      const HostTensor dout = random_values({B, T, H, D});
      HostTensor out({B, T, H, D}, DType::F32), dA({B, T, H, R}, DType::F32), dB({B, T, R, D}, DType::F32);
      ops::tpa_contract_forward(out.view(), A, factor_B);
      ops::tpa_contract_backward(dA.view(), dB.view(), dout, A, factor_B);
      const DeviceTensor gA = upload(A, DType::BF16), gB = upload(factor_B, DType::BF16);
      DeviceTensor gout = poisoned({B, T, H, D}, DType::BF16), gdA = poisoned({B, T, H, R}), gdB = poisoned({B, T, R, D});
      ops::tpa_contract_forward(gout.view, gA, gB);
      ops::tpa_contract_backward(gdA.view, gdB.view, upload(dout, DType::BF16), gA, gB);
      EXPECT_CLOSE(gout.view, out, kBf16Output);
      EXPECT_CLOSE(gdA.view, dA, kFp32Order);
      EXPECT_CLOSE(gdB.view, dB, kFp32Order);
    }
  }
}

TEST_F(CudaOps, AdamWUpdatesFp32StateAndWritesTheBf16Copy) {
  const int64_t n = 1001;
  const HostTensor param0 = random_values({n}), grad = random_values({n}), m0 = random_values({n}, 0.1f);
  HostTensor v0 = random_values({n}, 0.01f);
  for (int64_t i = 0; i < n; ++i) v0.data<float>()[i] = std::abs(v0.data<float>()[i]);
  const ops::AdamWStep hyper{3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 7, 0.5f};
  HostTensor param = copy_of(param0), m = copy_of(m0), v = copy_of(v0), copy({n}, DType::BF16);
  ops::adamw_update(param.view(), grad, m.view(), v.view(), hyper, copy.view());
  DeviceTensor gparam = upload(param0), gm = upload(m0), gv = upload(v0), gcopy = poisoned({n}, DType::BF16);
  ops::adamw_update(gparam.view, upload(grad), gm.view, gv.view, hyper, gcopy.view);
  EXPECT_CLOSE(gparam.view, param, 1e-6);  // element-wise fp32: rounding only
  EXPECT_CLOSE(gm.view, m, 1e-6);
  EXPECT_CLOSE(gv.view, v, 1e-6);
  const HostTensor params_back = download(gparam.view), copy_back = download(gcopy.view);
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(copy_back.data<float>()[i], round_to_bf16(params_back.data<float>()[i])) << "element " << i;
}

// ---- attention ------------------------------------------------------------------------------------

struct AttentionCase {
  int64_t B, T, H, Hkv, D;
  ops::HeadMap heads;
  int64_t Dv = 0;  // the value width (MLA); 0: D
};

class CudaAttention : public CudaOps, public ::testing::WithParamInterface<AttentionCase> {};

// Forward and backward against the CPU twin, inputs bf16, outputs fp32 (so only the kernel's own
// rounding is measured), and the backward twice to the bit.
TEST_P(CudaAttention, ForwardBackwardMatchTheCpuAndRepeat) {
  const AttentionCase c = GetParam();
  const int64_t Dv = c.Dv ? c.Dv : c.D;
  const Shape q_shape{c.B, c.T, c.H, c.D}, kv_shape{c.B, c.T, c.Hkv, c.D};
  const Shape v_shape{c.B, c.T, c.Hkv, Dv}, y_shape{c.B, c.T, c.H, Dv};
  const HostTensor q = random_values(q_shape), k = random_values(kv_shape), v = random_values(v_shape);
  const HostTensor dy = random_values(y_shape);
  HostTensor y(y_shape, DType::F32), lse({c.B, c.H, c.T}, DType::F32);
  HostTensor dq(q_shape, DType::F32), dk(kv_shape, DType::F32), dv(v_shape, DType::F32);
  HostTensor scratch({ops::attention_scratch_elements(c.T, true)}, DType::F32);
  ops::attention_forward(y.view(), lse.view(), q, k, v, scratch.view(), c.heads);
  ops::attention_backward(dq.view(), dk.view(), dv.view(), dy, q, k, v, y, lse, scratch.view(), c.heads);

  const DeviceTensor gq = upload(q, DType::BF16), gk = upload(k, DType::BF16), gv = upload(v, DType::BF16);
  DeviceTensor gy = poisoned(y_shape), glse = poisoned({c.B, c.H, c.T});
  ops::attention_forward(gy.view, glse.view, gq, gk, gv, {}, c.heads);  // the kernels need no scratch
  EXPECT_CLOSE(gy.view, y, kAttention);
  EXPECT_CLOSE(glse.view, lse, 1e-5);  // fp32 scores of bf16 inputs: exact products, fp32 sums
  // The backward gets the CPU's y in fp32, so that rowsum(dO ⊙ y), where dS cancels, is the CPU's
  // up to order and the error measured is the kernel's own.
  const DeviceTensor gdy = upload(dy, DType::BF16), gy_in = upload(y);
  DeviceTensor gdq = poisoned(q_shape), gdk = poisoned(kv_shape), gdv = poisoned(v_shape);
  ops::attention_backward(gdq.view, gdk.view, gdv.view, gdy, gq, gk, gv, gy_in, glse.view, {}, c.heads);
  EXPECT_CLOSE(gdq.view, dq, kAttention);
  EXPECT_CLOSE(gdk.view, dk, kAttention);
  EXPECT_CLOSE(gdv.view, dv, kAttention);
  DeviceTensor again = poisoned(kv_shape), again_dq = poisoned(q_shape), again_dv = poisoned(v_shape);
  ops::attention_backward(again_dq.view, again.view, again_dv.view, gdy, gq, gk, gv, gy_in, glse.view, {}, c.heads);
  EXPECT_TRUE(bitwise_equal(download(again.view), download(gdk.view))) << "dK: no atomics, fixed order";
  EXPECT_TRUE(bitwise_equal(download(again_dq.view), download(gdq.view))) << "dQ in its own pass";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttention,
    ::testing::Values(AttentionCase{2, 17, 5, 5, 8, {}},            // T below one tile, D 8 padded to 16
                      AttentionCase{1, 130, 4, 2, 64, {0, 2, 0}},   // GQA groups of 2, T past two tiles
                      AttentionCase{2, 65, 3, 1, 40, {0, 3, 0}},    // MQA, D not a multiple of 16
                      AttentionCase{1, 77, 3, 2, 128, {3, 2, 1}},   // a TP rank's heads 3..5 over KV heads 1..2
                      AttentionCase{1, 64, 2, 2, 64, {}},           // exactly one tile
                      // MLA: query/key width 192 (128 + 64 rotated), values 128; the kernels'
                      // widest tiles (130 KB forward, 223 KB for dK and dV together).
                      AttentionCase{1, 17, 5, 5, 192, {}, 128},
                      // D = Dv = 192: dK and dV together need 250 KB, over the 227 KB opt-in, so
                      // pass 1 runs once for dV and once for dK.
                      AttentionCase{1, 70, 3, 3, 192, {}, 192},
                      AttentionCase{2, 17, 5, 5, 8, {}, 24}));      // values wider than keys

TEST_F(CudaOps, TpaAttentionMaterialisedPathOnDeviceTensors) {
  const int64_t B = 2, T = 17, H = 5, Rq = 3, R = 1, D = 8;
  const HostTensor A_q = random_values({B, T, H, Rq}), B_q = random_values({B, T, Rq, D});
  const HostTensor A_k = random_values({B, T, H, R}), B_k = random_values({B, T, R, D});
  const HostTensor A_v = random_values({B, T, H, R}), B_v = random_values({B, T, R, D});
  const int64_t workspace_elements = ops::tpa_attention_workspace_elements(B, T, H, D);
  HostTensor y({B, T, H, D}, DType::F32), lse({B, H, T}, DType::F32), workspace({workspace_elements}, DType::F32);
  ops::tpa_attention_forward(y.view(), lse.view(), {A_q, B_q, A_k, B_k, A_v, B_v}, workspace.view());
  DeviceTensor gfactors[6] = {upload(A_q, DType::BF16), upload(B_q, DType::BF16), upload(A_k, DType::BF16),
                              upload(B_k, DType::BF16), upload(A_v, DType::BF16), upload(B_v, DType::BF16)};
  DeviceTensor gy = poisoned({B, T, H, D}), glse = poisoned({B, H, T});
  DeviceTensor gworkspace = poisoned({workspace_elements});  // F32 q, k, v: the scalar tile loads
  ops::tpa_attention_forward(gy.view, glse.view,
                             {gfactors[0], gfactors[1], gfactors[2], gfactors[3], gfactors[4], gfactors[5]},
                             gworkspace.view);
  EXPECT_CLOSE(gy.view, y, kAttention);  // q, k, v rounded to bf16 in the shared-memory tiles
}

// ---- fused TPA attention ------------------------------------------------------------------------
// tpa_rotary_attention_* (RoPE inside the op) on the fused path against the materialised path on
// the GPU and against the CPU op, forward and backward. The factors are bf16 on the GPU (as in
// training) and the same bf16-rounded values in fp32 on the CPU; y, lse and the gradients are fp32
// so that only the kernels' own rounding is measured. Tolerances:
//   - fused vs materialised, kFp32Order: both paths round the same fp32 values (RoPE, then
//     Σ_r A·B̃ / rank) to the same bf16 tiles and fold dq/dk/dv into the factors with the same fp32
//     sums; only the compiler's fused multiply-adds may differ between their kernels;
//   - fused vs CPU, kAttention as plain attention (q, k, v and P, dS rounded to bf16 on the tensor
//     cores; dA and dB are linear maps of dq/dk/dv in fp32, which keep the relative error), and
//     kBf16Output for the lse, which moves only by the bf16 rounding of q and k (2^-9 each).

namespace {

struct TpaFusedCase {
  int64_t B, T, H, Rq, R, D, heads_per_block;
};

void PrintTo(const TpaFusedCase& c, std::ostream* os) {
  *os << "B " << c.B << " T " << c.T << " H " << c.H << " Rq " << c.Rq << " R " << c.R << " D " << c.D
      << " heads per block " << c.heads_per_block;
}

// One problem's inputs and outputs, on the host (fp32) or the GPU (bf16 factors, fp32 outputs).
struct TpaProblem {
  std::vector<HostTensor> factors;  // A_q, B_q, A_k, B_k, A_v, B_v (B_q, B_k before RoPE)
  HostTensor cos, sin, dy;
};

TpaProblem random_tpa_problem(const TpaFusedCase& c) {
  TpaProblem p;
  for (const Shape& shape : {Shape{c.B, c.T, c.H, c.Rq}, Shape{c.B, c.T, c.Rq, c.D}, Shape{c.B, c.T, c.H, c.R},
                             Shape{c.B, c.T, c.R, c.D}, Shape{c.B, c.T, c.H, c.R}, Shape{c.B, c.T, c.R, c.D}})
    p.factors.push_back(random_values(shape));
  p.cos = HostTensor({c.T, c.D / 2}, DType::F32);
  p.sin = HostTensor({c.T, c.D / 2}, DType::F32);
  ops::rope_tables(p.cos.view(), p.sin.view());
  p.dy = random_values({c.B, c.T, c.H, c.D});
  return p;
}

template <class Tensors>
ops::TpaFactors as_factors(const Tensors& x) {
  return {x[0], x[1], x[2], x[3], x[4], x[5]};
}

// What one path gives on the GPU: y, lse and the six factor gradients, downloaded.
struct TpaResults {
  HostTensor y, lse;
  std::vector<HostTensor> gradients;
};

struct DeviceTpaProblem {
  std::vector<DeviceTensor> factors;
  DeviceTensor cos, sin, dy, y_cpu;
};

DeviceTpaProblem upload_problem(const TpaProblem& p, const HostTensor& y_cpu) {
  DeviceTpaProblem d;
  for (const HostTensor& factor : p.factors) d.factors.push_back(upload(factor, DType::BF16));
  d.cos = upload(p.cos);
  d.sin = upload(p.sin);
  d.dy = upload(p.dy, DType::BF16);
  d.y_cpu = upload(y_cpu);
  return d;
}

// The forward, then the backward with the CPU's y (so that rowsum(dO ⊙ y), where dS cancels, is
// the CPU's up to order, as in the attention test) and this path's lse. Every output starts as NaN.
TpaResults run_on_gpu(const TpaFusedCase& c, const DeviceTpaProblem& d, ops::TpaAttentionChoice choice) {
  DeviceTensor y = poisoned({c.B, c.T, c.H, c.D}), lse = poisoned({c.B, c.H, c.T});
  DeviceTensor workspace = poisoned({ops::tpa_rotary_attention_workspace_elements(c.B, c.T, c.H, c.Rq, c.R, c.D)});
  ops::tpa_rotary_attention_forward(y.view, lse.view, as_factors(d.factors), d.cos, d.sin, workspace.view, choice);
  std::vector<DeviceTensor> gradients;
  for (const DeviceTensor& factor : d.factors) gradients.push_back(poisoned(factor.view.shape()));
  ops::tpa_rotary_attention_backward(as_factors(gradients), d.dy, d.y_cpu, lse.view, as_factors(d.factors), d.cos,
                                     d.sin, workspace.view, choice);
  TpaResults results{download(y.view), download(lse.view), {}};
  for (const DeviceTensor& gradient : gradients) results.gradients.push_back(download(gradient.view));
  return results;
}

bool same_bits(const TpaResults& a, const TpaResults& b) {
  bool same = bitwise_equal(a.y, b.y) && bitwise_equal(a.lse, b.lse);
  for (size_t i = 0; i < a.gradients.size(); ++i) same = same && bitwise_equal(a.gradients[i], b.gradients[i]);
  return same;
}

const char* const kFactorNames[6] = {"dA_q", "dB_q", "dA_k", "dB_k", "dA_v", "dB_v"};

void expect_close(const TpaResults& gpu, const TpaResults& reference, double tolerance, double lse_tolerance,
                  const char* against) {
  EXPECT_LE(relative_error(gpu.y, reference.y), tolerance) << "y vs " << against;
  EXPECT_LE(relative_error(gpu.lse, reference.lse), lse_tolerance) << "lse vs " << against;
  for (size_t i = 0; i < gpu.gradients.size(); ++i)
    EXPECT_LE(relative_error(gpu.gradients[i], reference.gradients[i]), tolerance) << kFactorNames[i] << " vs " << against;
}

class CudaTpaFused : public CudaOps, public ::testing::WithParamInterface<TpaFusedCase> {};

}  // namespace

TEST_P(CudaTpaFused, MatchesTheMaterialisedPathAndTheCpuAndRepeatsToTheBit) {
  const TpaFusedCase c = GetParam();
  const TpaProblem p = random_tpa_problem(c);
  TpaResults cpu{HostTensor({c.B, c.T, c.H, c.D}, DType::F32), HostTensor({c.B, c.H, c.T}, DType::F32), {}};
  for (const HostTensor& factor : p.factors) cpu.gradients.emplace_back(factor.view().shape(), DType::F32);
  HostTensor workspace({ops::tpa_rotary_attention_workspace_elements(c.B, c.T, c.H, c.Rq, c.R, c.D)}, DType::F32);
  ops::tpa_rotary_attention_forward(cpu.y.view(), cpu.lse.view(), as_factors(p.factors), p.cos, p.sin,
                                    workspace.view());
  std::vector<Tensor> cpu_gradients;
  for (HostTensor& gradient : cpu.gradients) cpu_gradients.push_back(gradient.view());
  ops::tpa_rotary_attention_backward(as_factors(cpu_gradients), p.dy, cpu.y, cpu.lse, as_factors(p.factors), p.cos,
                                     p.sin, workspace.view());

  const DeviceTpaProblem d = upload_problem(p, cpu.y);
  const ops::TpaAttentionChoice fused_choice{ops::TpaAttentionPath::Fused, c.heads_per_block};
  const TpaResults fused = run_on_gpu(c, d, fused_choice);
  const TpaResults materialised = run_on_gpu(c, d, {ops::TpaAttentionPath::Materialised, 0});
  expect_close(fused, materialised, kFp32Order, kFp32Order, "the materialised path");
  expect_close(fused, cpu, kAttention, kBf16Output, "the CPU op");
  EXPECT_TRUE(same_bits(run_on_gpu(c, d, fused_choice), fused)) << "a repeat run: fixed order, no atomics";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaTpaFused,
    ::testing::Values(TpaFusedCase{2, 17, 5, 3, 1, 8, 2},    // T 17, D 8; heads 2 + 2 + 1 per forward block
                      TpaFusedCase{1, 17, 34, 6, 2, 64, 0},  // T6-small's shape; as many heads as fit: 4, 4, ..., 2
                      TpaFusedCase{1, 70, 4, 1, 2, 16, 3},   // past one tile; groups of 3 over 4 heads
                      TpaFusedCase{1, 17, 3, 2, 1, 64, 1},   // one head per block
                      TpaFusedCase{2, 17, 5, 4, 2, 8, 4},    // groups of 4 over 5 heads
                      TpaFusedCase{1, 17, 2, 5, 1, 64, 0}));

TEST_F(CudaOps, FusedTpaBackwardBeyondSharedMemoryNamesTheMaterialisedPath) {
  const TpaFusedCase c{1, 17, 1, 1, 1, 128, 0};  // head dim 128: the dK/dV pass's tiles and dB exceed 227 KiB
  const TpaProblem p = random_tpa_problem(c);
  const DeviceTpaProblem d = upload_problem(p, random_values({c.B, c.T, c.H, c.D}));
  const DeviceTensor lse = upload(random_values({c.B, c.H, c.T}));
  std::vector<DeviceTensor> gradients;
  for (const DeviceTensor& factor : d.factors) gradients.push_back(poisoned(factor.view.shape()));
  try {
    ops::tpa_rotary_attention_backward(as_factors(gradients), d.dy, d.y_cpu, lse, as_factors(d.factors), d.cos, d.sin,
                                       {});
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("bytes of shared memory per block"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("TpaAttentionPath::Materialised"), std::string::npos) << error.what();
  }
}

// ---- memory and errors -------------------------------------------------------------------------

TEST_F(CudaOps, DeviceArenaHandsOutZeroedDeviceViews) {
  Tensor activations, statistics;
  Arena arena(
      [&](Arena& plan) {
        activations = plan.take({3, 5}, DType::BF16);
        statistics = plan.take({7});
      },
      Device::CUDA);
  EXPECT_EQ(activations.device(), Device::CUDA);
  EXPECT_EQ(statistics.device(), Device::CUDA);
  EXPECT_GE(arena.bytes(), size_t(3 * 5 * 2 + 7 * 4));
  for (const Tensor* view : {&activations, &statistics}) {
    const HostTensor back = download(*view);
    for (int64_t i = 0; i < back.numel(); ++i) ASSERT_EQ(back.data<float>()[i], 0.0f) << "arenas start zeroed";
  }
}

TEST_F(CudaOps, HostTensorMixedIntoADeviceOpIsAClearError) {
  const HostTensor host = random_values({4, 4});
  DeviceTensor out = poisoned({4, 4});
  try {
    ops::add(out.view, host, host);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("add: a tensor on the CPU"), std::string::npos) << error.what();
  }
}

// Gradients and sums accumulate in fp32 (DESIGN.md, Precision): a BF16 accumulation target is one
// clear error naming the op, not a silent loss of the small terms.
TEST_F(CudaOps, Bf16AccumulationTargetsAreRefused) {
  const int64_t rows = 5, d = 24, vocab = 97;
  const DeviceTensor x = upload(random_values({rows, d}), DType::BF16), weight = upload(random_values({d}), DType::BF16);
  DeviceTensor bf16_out = poisoned({rows, d}, DType::BF16), bf16_weight_out = poisoned({d}, DType::BF16);
  DeviceTensor fp32_out = poisoned({rows, d}), rstd = poisoned({rows});
  ops::rmsnorm_forward(fp32_out.view, rstd.view, x);
  DeviceTensor logits = poisoned({rows, vocab}, DType::BF16), row = poisoned({rows}), row2 = poisoned({rows});
  DeviceTensor row3 = poisoned({rows});
  const DeviceTensor targets = upload(ids(rows, vocab), DType::I32);
  const auto expect_refusal = [](const char* what, const std::function<void()>& call, const std::string& message) {
    try {
      call();
      ADD_FAILURE() << what << ": no error";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(message), std::string::npos) << what << ": " << error.what();
    }
  };
  expect_refusal("add", [&] { ops::add(bf16_out.view, x, x); }, "add: the sum must be F32");
  expect_refusal("rmsnorm_backward", [&] { ops::rmsnorm_backward(bf16_out.view, x, x, rstd.view); },
                 "rmsnorm_backward: dx accumulates");
  expect_refusal("weighted_rmsnorm_backward",
                 [&] { ops::weighted_rmsnorm_backward(fp32_out.view, bf16_weight_out.view, x, x, rstd.view, weight); },
                 "weighted_rmsnorm_backward: dweight accumulates");
  expect_refusal("linear_backward's dx", [&] { ops::matmul(bf16_out.view, x, upload(random_values({d, d}), DType::BF16), false, false, 1.0f, 1.0f); },
                 "matmul: beta 1 accumulates into out, so it must be F32");
  expect_refusal("cross_entropy_exp_sum",
                 [&] { ops::cross_entropy_exp_sum(row.view, row2.view, row3.view, logits.view, targets, {}); },
                 "cross_entropy_exp_sum: the logits must be F32");
  expect_refusal("cross_entropy_gradient",
                 [&] { ops::cross_entropy_gradient(logits.view, targets, row.view, row.view, row2.view, 1.0f, {}); },
                 "cross_entropy_gradient: the logits must be F32");
}

// Arena views start wherever the plan put them: cuBLASLt is told each operand's real alignment
// (the emulated cuBLASLt, like the real one, refuses an operand less aligned than the algorithm was
// chosen for), and a plan made for aligned operands is not reused for misaligned ones.
TEST_F(CudaOps, MatmulOnViewsOfAnyAlignmentMatchesTheCpu) {
  const int64_t M = 17, K = 33, N = 24;
  const HostTensor a = random_values({M, K}), b = random_values({N, K});
  HostTensor expected({M, N}, DType::F32);
  ops::matmul(expected.view(), a, b, false, true);
  for (size_t offset_elements : {0, 1, 8, 0}) {  // aligned, 2 bytes, 16 bytes, aligned again (the cached plan)
    SCOPED_TRACE(::testing::Message() << "offset " << offset_elements << " elements");
    const auto view_at = [&](const DeviceBuffer& buffer, Shape shape, DType dtype) {
      return Tensor(static_cast<char*>(buffer.data()) + offset_elements * dtype_size(dtype), shape, dtype, Device::CUDA);
    };
    DeviceBuffer a_buffer((M * K + 8) * 2), b_buffer((N * K + 8) * 2), out_buffer((M * N + 8) * 4);
    const Tensor ga = view_at(a_buffer, {M, K}, DType::BF16), gb = view_at(b_buffer, {N, K}, DType::BF16);
    const Tensor gout = view_at(out_buffer, {M, N}, DType::F32);
    copy_tensor(ga, upload(a, DType::BF16));
    copy_tensor(gb, upload(b, DType::BF16));
    ops::matmul(gout, ga, gb, false, true);
    EXPECT_CLOSE(gout, expected, kFp32Order);
  }
}

#ifdef T6_CUDA_EMU
// ---- scratch planned before the first step -------------------------------------------------------

// A trainer reserves its step's largest scratch need up front (kernels/cuda/scratch_needs.h); then
// the ops that take scratch allocate nothing, and a need past the reservation is an error instead
// of a cudaFree/cudaMalloc inside a step. (The reservation stays for the later tests of this
// process, so it is generous: every test here needs far less.)
TEST_F(CudaOps, ReservedScratchServesTheOpsWithoutAllocatingAndRefusesMore) {
  ops::cuda::CudaContext& context = ops::cuda::cuda_context();
  const int64_t N = 2 * 17, vocab = 97, d = 24;
  const size_t needed = std::max(ops::cuda::embedding_backward_scratch_bytes(N), ops::cuda::sum_of_squares_scratch_bytes(1));
  EXPECT_LT(needed, size_t(16) << 20);
  context.reserve_scratch(size_t(16) << 20);
  const DeviceTensor tokens = upload(ids(N, vocab), DType::I32), dout = upload(random_values({N, d}), DType::BF16);
  DeviceTensor dtable = upload(random_values({vocab, d}));
  cuda_emu::reset_runtime_counters();
  ops::embedding_backward(dtable.view, dout, tokens, {});
  const double squares = ops::sum_of_squares({dtable.view});
  EXPECT_EQ(cuda_emu::runtime_counters().allocations, 0u) << "scratch came from the reservation";
  EXPECT_EQ(cuda_emu::runtime_counters().synchronizations, 1u) << "only sum_of_squares' read back";
  EXPECT_GT(squares, 0.0);
  try {
    context.scratch(context.scratch_bytes() + 1);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("were reserved before the first step"), std::string::npos) << error.what();
  }
  EXPECT_EQ(cuda_emu::runtime_counters().allocations, 0u) << "refused, not grown";
}

// ---- determinism under the emulated GPU's orders ----------------------------------------------------

// The emulation runs blocks, and the threads of a block between barriers, forward, reverse or in a
// seeded random order. A kernel whose result depends on that order has a race or an order-dependent
// reduction (a float atomic, say): every landed kernel must give the same bits in all three.
TEST_F(CudaOps, EveryKernelGivesTheSameBitsInEveryOrder) {
  const int64_t B = 1, T = 77, H = 4, Hkv = 2, D = 40, R = 3, vocab = 97, d = 24;
  const HostTensor q = random_values({B, T, H, D}), k = random_values({B, T, Hkv, D}), v = random_values({B, T, Hkv, D});
  const HostTensor dy = random_values({B, T, H, D}), x = random_values({T, 97}, 2.0f), dx = random_values({T, 97});
  const HostTensor a = random_values({T, 33}), b = random_values({33, 24}), tokens = ids(T, vocab);
  const HostTensor table = random_values({vocab, d}), rows_d = random_values({T, d}), logits = random_values({T, vocab}, 8.0f);
  const HostTensor A = random_values({B, T, H, R}), factor_B = random_values({B, T, R, D});
  const ops::HeadMap heads{0, 2, 0};
  const int64_t Dn = 16, Dr = 8, Dv = 24;  // MLA's widths, small
  const HostTensor weight = random_values({97}), dweight = random_values({97});
  const HostTensor kv = random_values({B, T, Hkv, Dn + Dv}), k_pe = random_values({B, T, 1, Dr});
  const HostTensor latent_q = random_values({B, T, H, Dn + Dr});
  auto run_every_kernel = [&] {
    std::vector<HostTensor> outputs;
    auto keep = [&](const Tensor& device) { outputs.push_back(download(device)); };
    const DeviceTensor gq = upload(q, DType::BF16), gk = upload(k, DType::BF16), gv = upload(v, DType::BF16);
    DeviceTensor y = poisoned({B, T, H, D}), lse = poisoned({B, H, T});
    ops::attention_forward(y.view, lse.view, gq, gk, gv, {}, heads);
    DeviceTensor dq = poisoned({B, T, H, D}), dk = poisoned({B, T, Hkv, D}), dv = poisoned({B, T, Hkv, D});
    ops::attention_backward(dq.view, dk.view, dv.view, upload(dy, DType::BF16), gq, gk, gv, y.view, lse.view, {}, heads);
    for (const DeviceTensor* t : {&y, &lse, &dq, &dk, &dv}) keep(t->view);
    DeviceTensor product = poisoned({T, 24});
    ops::matmul(product.view, upload(a, DType::BF16), upload(b, DType::BF16), false, false);
    keep(product.view);
    const DeviceTensor gx = upload(x, DType::BF16);
    DeviceTensor normed = poisoned({T, 97}), rstd = poisoned({T}), gdx = upload(dx);
    ops::rmsnorm_forward(normed.view, rstd.view, gx);
    ops::rmsnorm_backward(gdx.view, upload(dx, DType::BF16), gx, rstd.view);
    DeviceTensor sum = poisoned({T, 97}), swiglu = poisoned({T, 97}), da = poisoned({T, 97}), db = poisoned({T, 97});
    ops::add(sum.view, gx, normed.view);
    ops::swiglu_forward(swiglu.view, gx, normed.view);
    ops::swiglu_backward(da.view, db.view, gdx.view, gx, normed.view);
    for (const DeviceTensor* t : {&normed, &rstd, &gdx, &sum, &swiglu, &da, &db}) keep(t->view);
    outputs.push_back(HostTensor({1}, DType::F32));
    outputs.back().data<float>()[0] = float(ops::sum_of_squares({gdx.view}));
    DeviceTensor cos = poisoned({T, D / 2}), sin = poisoned({T, D / 2}), rotated = upload(q);
    ops::rope_tables(cos.view, sin.view);
    ops::rope_forward(rotated.view, cos.view, sin.view);
    ops::rope_backward(rotated.view, cos.view, sin.view);
    keep(rotated.view);
    const DeviceTensor gtokens = upload(tokens, DType::I32);
    DeviceTensor embedded = poisoned({T, d}), dtable = upload(table);
    ops::embedding_forward(embedded.view, gtokens, upload(table, DType::BF16), {0, vocab});
    ops::embedding_backward(dtable.view, upload(rows_d, DType::BF16), gtokens, {0, vocab});
    DeviceTensor exp_logits = upload(logits), local_max = poisoned({T}), sum_exp = poisoned({T}), target = poisoned({T});
    DeviceTensor losses = poisoned({T});
    ops::cross_entropy_exp_sum(local_max.view, sum_exp.view, target.view, exp_logits.view, gtokens, {0, vocab});
    ops::cross_entropy_rescale(sum_exp.view, local_max.view, local_max.view);
    ops::cross_entropy_losses(losses.view, local_max.view, sum_exp.view, target.view);
    ops::cross_entropy_gradient(exp_logits.view, gtokens, local_max.view, local_max.view, sum_exp.view, 0.5f, {0, vocab});
    for (const DeviceTensor* t : {&embedded, &dtable, &losses, &exp_logits}) keep(t->view);
    const DeviceTensor gA = upload(A, DType::BF16), gB = upload(factor_B, DType::BF16);
    DeviceTensor contracted = poisoned({B, T, H, D}), dA = poisoned({B, T, H, R}), dB = poisoned({B, T, R, D});
    ops::tpa_contract_forward(contracted.view, gA, gB);
    ops::tpa_contract_backward(dA.view, dB.view, upload(dy, DType::BF16), gA, gB);
    DeviceTensor param = upload(x), m = upload(dx), second_moment = upload(x), copy = poisoned({T, 97}, DType::BF16);
    ops::fill_zero(second_moment.view);
    ops::adamw_update(param.view, upload(dx), m.view, second_moment.view, {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 3, 1.0f},
                      copy.view);
    for (const DeviceTensor* t : {&contracted, &dA, &dB, &param, &m, &second_moment, &copy}) keep(t->view);
    // The fused TPA attention, with forward head groups of 3 over 4 heads and dB summed over heads.
    const ops::TpaFactors factors{gA, gB, gA, gB, gA, gB};
    DeviceTensor tpa_y = poisoned({B, T, H, D}), tpa_lse = poisoned({B, H, T});
    ops::tpa_rotary_attention_forward(tpa_y.view, tpa_lse.view, factors, cos.view, sin.view, {},
                                      {ops::TpaAttentionPath::Fused, 3});
    std::vector<DeviceTensor> tpa_gradients;
    for (const DeviceTensor* factor : {&gA, &gB, &gA, &gB, &gA, &gB}) tpa_gradients.push_back(poisoned(factor->view.shape()));
    ops::tpa_rotary_attention_backward(as_factors(tpa_gradients), upload(dy, DType::BF16), tpa_y.view, tpa_lse.view,
                                       factors, cos.view, sin.view, {});
    keep(tpa_y.view);
    keep(tpa_lse.view);
    for (const DeviceTensor& gradient : tpa_gradients) keep(gradient.view);
    // MLA: the weighted norm (its weight gradient sums over rows), the k/v split (dk_pe sums over
    // heads), attention with values narrower than keys, the cast and the list statistics.
    const DeviceTensor norm_weight = upload(weight, DType::BF16);
    DeviceTensor weighted = poisoned({T, 97}, DType::BF16), wrstd = poisoned({T}), wdx = upload(dx);
    DeviceTensor wdweight = upload(dweight);
    ops::weighted_rmsnorm_forward(weighted.view, wrstd.view, gx, norm_weight);
    ops::weighted_rmsnorm_backward(wdx.view, wdweight.view, upload(dx, DType::BF16), gx, wrstd.view, norm_weight);
    DeviceTensor mla_k = poisoned({B, T, Hkv, Dn + Dr}, DType::BF16), mla_v = poisoned({B, T, Hkv, Dv}, DType::BF16);
    ops::mla_split_kv_forward(mla_k.view, mla_v.view, upload(kv, DType::BF16), upload(k_pe, DType::BF16));
    DeviceTensor dkv = poisoned({B, T, Hkv, Dn + Dv}), dk_pe = poisoned({B, T, 1, Dr});
    ops::mla_split_kv_backward(dkv.view, dk_pe.view, mla_k.view, mla_v.view);
    const DeviceTensor mla_q = upload(latent_q, DType::BF16);
    DeviceTensor mla_y = poisoned({B, T, H, Dv}), mla_lse = poisoned({B, H, T});
    ops::attention_forward(mla_y.view, mla_lse.view, mla_q, mla_k.view, mla_v.view, {}, heads);
    DeviceTensor mla_dq = poisoned({B, T, H, Dn + Dr}), mla_dk = poisoned({B, T, Hkv, Dn + Dr}), mla_dv = poisoned({B, T, Hkv, Dv});
    ops::attention_backward(mla_dq.view, mla_dk.view, mla_dv.view, mla_y.view, mla_q, mla_k.view, mla_v.view, mla_y.view,
                            mla_lse.view, {}, heads);
    DeviceTensor narrowed = poisoned({T, 97}, DType::BF16), statistics{DeviceBuffer(2 * sizeof(double)), {}};
    ops::cast(narrowed.view, gdx.view);
    statistics.view = statistics.buffer.as({2}, DType::F64);
    ops::tensor_list_statistics(statistics.view, {gdx.view, normed.view, dkv.view, mla_dk.view});
    for (const DeviceTensor* t : {&weighted, &wrstd, &wdx, &wdweight, &mla_k, &mla_v, &dkv, &dk_pe, &mla_y, &mla_lse,
                                  &mla_dq, &mla_dk, &mla_dv, &narrowed})
      keep(t->view);
    outputs.push_back(HostTensor({2}, DType::F64));
    copy_tensor(outputs.back().view(), statistics.view);
    return outputs;
  };
  using cuda_emu::ScheduleOrder;
  cuda_emu::set_schedule_order(ScheduleOrder::Forward);
  const std::vector<HostTensor> forward = run_every_kernel();
  for (ScheduleOrder order : {ScheduleOrder::Reverse, ScheduleOrder::Random}) {
    cuda_emu::set_schedule_order(order);
    const std::vector<HostTensor> other = run_every_kernel();
    ASSERT_EQ(other.size(), forward.size());
    for (size_t i = 0; i < forward.size(); ++i)
      EXPECT_TRUE(bitwise_equal(other[i], forward[i])) << "output " << i << " in order " << int(order);
  }
  cuda_emu::set_schedule_order(ScheduleOrder::Random);
}
#endif
