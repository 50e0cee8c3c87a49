// ctest-labels: gpu
// ctest-requires: T6_CUDA_EMU
// The emulated cuBLASLt (src/cuda_emu/cublaslt.cpp) against a double-precision reference of cuBLASLt's
// documented column-major D = alpha · op(A) · op(B) + beta · C: all four transpose combinations, odd
// shapes, leading dimensions larger than the rows (the padding must stay untouched), C aliasing D,
// bf16 and fp32; and the 256-byte default alignment the heuristic's algorithm assumes.
#include <gtest/gtest.h>

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/bf16.h"

namespace {

// A column-major matrix as stored on the device: rows × cols with leading dimension ld, in bf16 or
// fp32, the padding rows filled with a sentinel.
struct StoredMatrix {
  cudaDataType type;
  int64_t rows, cols, ld;
  std::vector<float> values;  // ld × cols, exactly representable in `type`

  size_t element_bytes() const { return type == CUDA_R_16BF ? 2 : 4; }
  size_t bytes() const { return values.size() * element_bytes(); }
  float at(int64_t i, int64_t j) const { return values[size_t(i + j * ld)]; }

  std::vector<unsigned char> encoded() const {
    std::vector<unsigned char> raw(bytes());
    for (size_t e = 0; e < values.size(); ++e) {
      if (type == CUDA_R_16BF) {
        const uint16_t bits = t6::float_to_bf16_bits(values[e]);
        std::memcpy(&raw[e * 2], &bits, 2);
      } else {
        std::memcpy(&raw[e * 4], &values[e], 4);
      }
    }
    return raw;
  }
  void decode(const std::vector<unsigned char>& raw) {
    for (size_t e = 0; e < values.size(); ++e) {
      if (type == CUDA_R_16BF) {
        uint16_t bits;
        std::memcpy(&bits, &raw[e * 2], 2);
        values[e] = t6::bf16_bits_to_float(bits);
      } else {
        std::memcpy(&values[e], &raw[e * 4], 4);
      }
    }
  }
};

constexpr float kPadding = 12288.0f;  // exact in bf16

StoredMatrix random_matrix(cudaDataType type, int64_t rows, int64_t cols, int64_t ld, std::mt19937& random) {
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  StoredMatrix m{type, rows, cols, ld, std::vector<float>(size_t(ld * cols), kPadding)};
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = 0; i < rows; ++i) {
      const float value = uniform(random);
      m.values[size_t(i + j * ld)] = type == CUDA_R_16BF ? t6::round_to_bf16(value) : value;
    }
  return m;
}

void* upload(const StoredMatrix& m, size_t offset_bytes = 0) {
  void* device = nullptr;
  EXPECT_EQ(cudaMalloc(&device, m.bytes() + offset_bytes), cudaSuccess);
  void* start = static_cast<char*>(device) + offset_bytes;
  const std::vector<unsigned char> raw = m.encoded();
  EXPECT_EQ(cudaMemcpy(start, raw.data(), raw.size(), cudaMemcpyHostToDevice), cudaSuccess);
  return start;
}

void download(StoredMatrix& m, const void* device) {
  std::vector<unsigned char> raw(m.bytes());
  ASSERT_EQ(cudaMemcpy(raw.data(), device, raw.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  m.decode(raw);
}

struct Problem {
  bool transa, transb;
  int64_t m, n, k;
  cudaDataType input, output;
  float alpha, beta;
  uint32_t alignment_a = 0;  // 0: leave the preference at its default
};

struct Matmul {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};

  Matmul(const Problem& p, const StoredMatrix& sa, const StoredMatrix& sb, const StoredMatrix& sd) {
    EXPECT_EQ(cublasLtCreate(&handle), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
    const cublasOperation_t op_a = p.transa ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = p.transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    EXPECT_EQ(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cublasLtMatrixLayoutCreate(&a, sa.type, uint64_t(sa.rows), uint64_t(sa.cols), sa.ld), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cublasLtMatrixLayoutCreate(&b, sb.type, uint64_t(sb.rows), uint64_t(sb.cols), sb.ld), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cublasLtMatrixLayoutCreate(&d, sd.type, uint64_t(sd.rows), uint64_t(sd.cols), sd.ld), CUBLAS_STATUS_SUCCESS);
    cublasLtMatmulPreference_t preference = nullptr;
    EXPECT_EQ(cublasLtMatmulPreferenceCreate(&preference), CUBLAS_STATUS_SUCCESS);
    const size_t workspace = 1 << 20;
    EXPECT_EQ(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                   sizeof workspace),
              CUBLAS_STATUS_SUCCESS);
    if (p.alignment_a) {
      EXPECT_EQ(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                     &p.alignment_a, sizeof p.alignment_a),
                CUBLAS_STATUS_SUCCESS);
    }
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    EXPECT_EQ(cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, d, d, preference, 1, &result, &found),
              CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(found, 1);
    algo = result.algo;
    cublasLtMatmulPreferenceDestroy(preference);
  }
  ~Matmul() {
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(d);
    cublasLtMatmulDescDestroy(desc);
    cublasLtDestroy(handle);
  }
  cublasStatus_t run(const Problem& p, const void* da, const void* db, void* dd) const {
    return cublasLtMatmul(handle, desc, &p.alpha, da, a, db, b, &p.beta, dd, d, dd, d, &algo, nullptr, 0, nullptr);
  }
};

struct Operands {
  StoredMatrix a, b, d;  // d holds C on entry (C aliases D)
};

Operands make_operands(const Problem& p, std::mt19937& random) {
  const int64_t a_rows = p.transa ? p.k : p.m, a_cols = p.transa ? p.m : p.k;
  const int64_t b_rows = p.transb ? p.n : p.k, b_cols = p.transb ? p.k : p.n;
  return {random_matrix(p.input, a_rows, a_cols, a_rows + 3, random),
          random_matrix(p.input, b_rows, b_cols, b_rows + 2, random),
          random_matrix(p.output, p.m, p.n, p.m + 5, random)};
}

// Every element within fp32 accumulation error (and, for a bf16 output, half a bf16 step) of the
// double-precision product; padding untouched.
void expect_matches_reference(const Problem& p, const Operands& in, const StoredMatrix& out) {
  for (int64_t j = 0; j < p.n; ++j)
    for (int64_t i = 0; i < p.m; ++i) {
      double sum = 0.0, magnitude = 0.0;
      for (int64_t l = 0; l < p.k; ++l) {
        const double x = p.transa ? in.a.at(l, i) : in.a.at(i, l);
        const double y = p.transb ? in.b.at(j, l) : in.b.at(l, j);
        sum += x * y;
        magnitude += std::fabs(x * y);
      }
      const double expected = double(p.alpha) * sum + double(p.beta) * in.d.at(i, j);
      double tolerance = 1e-6 * (std::fabs(p.alpha) * magnitude + std::fabs(p.beta * in.d.at(i, j))) + 1e-30;
      if (p.output == CUDA_R_16BF) tolerance += std::fabs(expected) * std::ldexp(1.0, -8);
      const double actual = out.at(i, j);
      EXPECT_TRUE(std::fabs(actual - expected) <= tolerance)  // false for NaN
          << "D(" << i << ", " << j << ") = " << actual << ", expected " << expected;
    }
  for (int64_t j = 0; j < p.n; ++j)
    for (int64_t i = p.m; i < out.ld; ++i) EXPECT_EQ(out.at(i, j), kPadding) << "padding D(" << i << ", " << j << ")";
}

void check_problem(const Problem& p, uint32_t seed) {
  std::mt19937 random(seed);
  const Operands in = make_operands(p, random);
  void* da = upload(in.a);
  void* db = upload(in.b);
  void* dd = upload(in.d);
  const Matmul matmul(p, in.a, in.b, in.d);
  ASSERT_EQ(matmul.run(p, da, db, dd), CUBLAS_STATUS_SUCCESS) << cublasLtGetStatusString(CUBLAS_STATUS_INVALID_VALUE);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  StoredMatrix out = in.d;
  download(out, dd);
  expect_matches_reference(p, in, out);
  cudaFree(da);
  cudaFree(db);
  cudaFree(dd);
}

}  // namespace

TEST(CudaEmuCublasLt, AllFourTransposesWithOddShapesAndPaddedLeadingDimensions) {
  uint32_t seed = 1;
  for (cudaDataType input : {CUDA_R_16BF, CUDA_R_32F})
    for (cudaDataType output : {CUDA_R_16BF, CUDA_R_32F}) {
      if (input == CUDA_R_32F && output == CUDA_R_16BF) continue;
      for (bool transa : {false, true})
        for (bool transb : {false, true}) {
          SCOPED_TRACE(::testing::Message() << "transa " << transa << " transb " << transb << " input "
                                            << (input == CUDA_R_16BF ? "bf16" : "fp32") << " output "
                                            << (output == CUDA_R_16BF ? "bf16" : "fp32"));
          check_problem({transa, transb, 5, 7, 3, input, output, 1.5f, -0.5f}, seed++);
          check_problem({transa, transb, 9, 1, 13, input, output, -0.75f, 0.0f}, seed++);
        }
    }
}

TEST(CudaEmuCublasLt, BetaZeroDoesNotReadC) {
  const Problem p{false, true, 4, 6, 5, CUDA_R_16BF, CUDA_R_32F, 1.0f, 0.0f};
  std::mt19937 random(7);
  Operands in = make_operands(p, random);
  for (int64_t j = 0; j < p.n; ++j)
    for (int64_t i = 0; i < p.m; ++i) in.d.values[size_t(i + j * in.d.ld)] = std::numeric_limits<float>::quiet_NaN();
  void* da = upload(in.a);
  void* db = upload(in.b);
  void* dd = upload(in.d);
  const Matmul matmul(p, in.a, in.b, in.d);
  ASSERT_EQ(matmul.run(p, da, db, dd), CUBLAS_STATUS_SUCCESS);
  StoredMatrix out = in.d;
  download(out, dd);  // the legacy stream's copy waits for the matmul queued on the legacy stream
  in.d.values.assign(in.d.values.size(), 0.0f);
  expect_matches_reference(p, in, out);
  cudaFree(da);
  cudaFree(db);
  cudaFree(dd);
}

TEST(CudaEmuCublasLt, AMisalignedOperandIsInvalidUnlessThePreferenceAllowsIt) {
  Problem p{false, false, 4, 4, 4, CUDA_R_16BF, CUDA_R_16BF, 1.0f, 0.0f};
  std::mt19937 random(3);
  const Operands in = make_operands(p, random);
  void* da = upload(in.a, /*offset_bytes=*/16);  // 16-byte aligned, as a view into an arena
  void* db = upload(in.b);
  void* dd = upload(in.d);
  {
    const Matmul matmul(p, in.a, in.b, in.d);
    EXPECT_EQ(matmul.run(p, da, db, dd), CUBLAS_STATUS_INVALID_VALUE);
    const std::string message = cublasLtGetStatusString(CUBLAS_STATUS_INVALID_VALUE);
    EXPECT_NE(message.find("cublasLtMatmul: A "), std::string::npos) << message;
    EXPECT_NE(message.find("is not aligned to the 256 bytes"), std::string::npos) << message;
  }
  p.alignment_a = 16;
  const Matmul matmul(p, in.a, in.b, in.d);
  ASSERT_EQ(matmul.run(p, da, db, dd), CUBLAS_STATUS_SUCCESS);
  StoredMatrix out = in.d;
  download(out, dd);
  expect_matches_reference(p, in, out);
  cudaFree(static_cast<char*>(da) - 16);
  cudaFree(db);
  cudaFree(dd);
}

TEST(CudaEmuCublasLt, HostOperandsAndOtherEpiloguesAreRefused) {
  const Problem p{false, false, 2, 2, 2, CUDA_R_32F, CUDA_R_32F, 1.0f, 0.0f};
  std::mt19937 random(5);
  Operands in = make_operands(p, random);
  void* db = upload(in.b);
  void* dd = upload(in.d);
  const Matmul matmul(p, in.a, in.b, in.d);
  EXPECT_EQ(matmul.run(p, in.a.values.data(), db, dd), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(cublasLtGetStatusString(CUBLAS_STATUS_INVALID_VALUE)).find("is not device memory"),
            std::string::npos);
  const cublasLtEpilogue_t relu = CUBLASLT_EPILOGUE_RELU;
  EXPECT_EQ(cublasLtMatmulDescSetAttribute(matmul.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &relu, sizeof relu),
            CUBLAS_STATUS_NOT_SUPPORTED);
  cudaGetLastError();
  cudaFree(db);
  cudaFree(dd);
}

