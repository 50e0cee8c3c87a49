// The cuBLASLt subset matmul.cu uses: D = alpha · op(A) · op(B) + beta · C in cuBLASLt's column-major
// convention (transposes, leading dimensions, C may alias D and is not read when beta is 0), bf16 or
// fp32 inputs converted exactly to fp32, fp32 accumulation by OpenBLAS, bf16 (round to nearest even)
// or fp32 output, only the default epilogue. The heuristic returns one algorithm that remembers the
// minimum operand alignment it was chosen for: 256 bytes unless the preference says otherwise, as
// cuBLASLt assumes. A misaligned operand is CUBLAS_STATUS_INVALID_VALUE, so a misaligned arena view
// fails here as it would on the GPU. The product runs as device work on the given stream.
#include <cblas.h>
#include <cublasLt.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "cuda_emu/runtime_state.h"

struct cublasLtContext {};  // the emulation keeps no state per handle

using namespace t6::cuda_emu;

namespace {

// The semi-opaque descriptors hold these, copied in and out of their data words.
constexpr uint32_t kLayoutTag = 0x4c61794fu, kDescTag = 0x44657363u, kPreferenceTag = 0x50726566u,
                   kAlgoTag = 0x416c676fu;
constexpr uint32_t kDefaultAlignment = 256;

struct Layout {
  uint32_t tag;
  cudaDataType type;
  uint64_t rows, cols;
  int64_t ld;
};
struct Desc {
  uint32_t tag;
  cublasComputeType_t compute;
  cudaDataType scale;
  cublasOperation_t transa, transb;
};
struct Preference {
  uint32_t tag;
  uint64_t workspace;
  uint32_t alignment[4];  // A, B, C, D
};
struct Algo {
  uint32_t tag;
  uint32_t alignment[4];
};

template <class T, class Opaque>
T read(const Opaque* opaque) {
  static_assert(sizeof(T) <= sizeof(Opaque));
  T value;
  std::memcpy(&value, opaque, sizeof value);
  return value;
}

template <class T, class Opaque>
void write(Opaque* opaque, const T& value) {
  static_assert(sizeof(T) <= sizeof(Opaque));
  std::memcpy(opaque, &value, sizeof value);
}

// The last failure on this thread, with a description naming the call (as for CUDA errors).
thread_local cublasStatus_t described_status = CUBLAS_STATUS_SUCCESS;
thread_local std::string status_description;

cublasStatus_t failure(cublasStatus_t status, std::string message) {
  described_status = status;
  status_description = std::move(message);
  return status;
}

const char* status_text(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return "unknown error";
  }
}

size_t element_bytes(cudaDataType type) { return type == CUDA_R_16BF ? 2 : 4; }

float load(const void* base, cudaDataType type, size_t index) {
  if (type == CUDA_R_16BF) return t6::bf16_bits_to_float(static_cast<const uint16_t*>(base)[index]);
  return static_cast<const float*>(base)[index];
}

void store(void* base, cudaDataType type, size_t index, float value) {
  if (type == CUDA_R_16BF)
    static_cast<uint16_t*>(base)[index] = t6::float_to_bf16_bits(value);
  else
    static_cast<float*>(base)[index] = value;
}

// A stored column-major matrix as fp32 with ld = rows (exact: bf16 widens without rounding).
std::vector<float> widen(const void* data, const Layout& layout) {
  std::vector<float> values(layout.rows * layout.cols);
  for (uint64_t j = 0; j < layout.cols; ++j)
    for (uint64_t i = 0; i < layout.rows; ++i)
      values[i + j * layout.rows] = load(data, layout.type, i + j * size_t(layout.ld));
  return values;
}

struct Operand {
  const char* name;
  const void* pointer;
  const Layout* layout;
  uint32_t alignment;
};

// The operand must be device memory covering its layout, aligned as the algorithm assumes.
cublasStatus_t check_operand(const Operand& operand) {
  const Layout& layout = *operand.layout;
  const size_t extent = layout.cols == 0 ? 0 : (size_t(layout.ld) * (layout.cols - 1) + layout.rows) * element_bytes(layout.type);
  if (check_device_span("cublasLtMatmul", operand.name, operand.pointer, extent) != cudaSuccess)
    return failure(CUBLAS_STATUS_INVALID_VALUE, cudaGetErrorString(cudaErrorInvalidValue));
  if (reinterpret_cast<uintptr_t>(operand.pointer) % operand.alignment != 0) {
    char address[32];
    std::snprintf(address, sizeof address, "%p", operand.pointer);
    return failure(CUBLAS_STATUS_INVALID_VALUE,
                   std::string("cublasLtMatmul: ") + operand.name + " " + address + " is not aligned to the " +
                       std::to_string(operand.alignment) + " bytes the algorithm was chosen for (set "
                       "CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES for a smaller alignment)");
  }
  return CUBLAS_STATUS_SUCCESS;
}

bool valid_layout(cublasLtMatrixLayout_t layout) { return layout && read<Layout>(layout).tag == kLayoutTag; }

// Shapes and types of D = op(A) · op(B) + C; m, n, k from the layouts.
cublasStatus_t check_problem(const Desc& desc, const Layout& a, const Layout& b, const Layout& c, const Layout& d,
                             uint64_t* k) {
  if (desc.compute != CUBLAS_COMPUTE_32F || desc.scale != CUDA_R_32F)
    return failure(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmul: only CUBLAS_COMPUTE_32F with CUDA_R_32F scale is emulated");
  if (a.type != b.type || (a.type != CUDA_R_16BF && a.type != CUDA_R_32F) ||
      (d.type != CUDA_R_16BF && d.type != CUDA_R_32F) || c.type != d.type || (a.type == CUDA_R_32F && d.type != CUDA_R_32F))
    return failure(CUBLAS_STATUS_NOT_SUPPORTED,
                   "cublasLtMatmul: emulated types are bf16 or fp32 A and B alike, and C = D of bf16 or fp32 (fp32 for fp32 inputs)");
  const bool ta = desc.transa == CUBLAS_OP_T, tb = desc.transb == CUBLAS_OP_T;
  const uint64_t m = d.rows, n = d.cols;
  *k = ta ? a.rows : a.cols;
  const bool shapes_fit = (ta ? a.cols : a.rows) == m && (tb ? b.cols : b.rows) == *k && (tb ? b.rows : b.cols) == n &&
                          c.rows == m && c.cols == n;
  if (!shapes_fit)
    return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul: the layouts of A (" + std::to_string(a.rows) + "x" +
                                                    std::to_string(a.cols) + "), B (" + std::to_string(b.rows) + "x" +
                                                    std::to_string(b.cols) + ") and D (" + std::to_string(m) + "x" +
                                                    std::to_string(n) + ") do not fit the transposes");
  for (const Layout* layout : {&a, &b, &c, &d})
    if (layout->ld < int64_t(std::max<uint64_t>(layout->rows, 1)))
      return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul: a leading dimension " + std::to_string(layout->ld) +
                                                      " is below its row count " + std::to_string(layout->rows));
  if (m > INT_MAX || n > INT_MAX || *k > INT_MAX)
    return failure(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmul: a dimension beyond 2^31 is not emulated");
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  if (!handle) return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtCreate: the handle pointer is null");
  *handle = new cublasLtContext{};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

size_t cublasLtGetVersion(void) { return CUBLAS_VERSION; }

const char* cublasLtGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

const char* cublasLtGetStatusString(cublasStatus_t status) {
  if (status != CUBLAS_STATUS_SUCCESS && status == described_status) return status_description.c_str();
  return status_text(status);
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  if (!layout) return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatrixLayoutCreate: the result pointer is null");
  *layout = new cublasLtMatrixLayoutOpaque_t{};
  write(*layout, Layout{kLayoutTag, type, rows, cols, ld});
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute, cudaDataType_t scale) {
  if (!desc) return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescCreate: the result pointer is null");
  *desc = new cublasLtMatmulDescOpaque_t{};
  write(*desc, Desc{kDescTag, compute, scale, CUBLAS_OP_N, CUBLAS_OP_N});
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute,
                                              const void* buffer, size_t bytes) {
  if (!desc || read<Desc>(desc).tag != kDescTag || !buffer)
    return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescSetAttribute: no descriptor or no value");
  Desc value = read<Desc>(desc);
  int32_t word = 0;
  if (bytes != sizeof word)
    return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescSetAttribute: attribute " +
                                                    std::to_string(int(attribute)) + " takes 4 bytes, not " +
                                                    std::to_string(bytes));
  std::memcpy(&word, buffer, sizeof word);
  switch (attribute) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB:
      if (word != CUBLAS_OP_N && word != CUBLAS_OP_T)
        return failure(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmulDescSetAttribute: only CUBLAS_OP_N and CUBLAS_OP_T are emulated");
      (attribute == CUBLASLT_MATMUL_DESC_TRANSA ? value.transa : value.transb) = cublasOperation_t(word);
      break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
      if (word != CUBLASLT_EPILOGUE_DEFAULT)
        return failure(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmulDescSetAttribute: epilogue " + std::to_string(word) +
                                                        " is not emulated (t6 uses only CUBLASLT_EPILOGUE_DEFAULT)");
      break;
    default:
      return failure(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmulDescSetAttribute: attribute " +
                                                      std::to_string(int(attribute)) + " is not emulated");
  }
  write(desc, value);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* preference) {
  if (!preference) return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceCreate: the result pointer is null");
  *preference = new cublasLtMatmulPreferenceOpaque_t{};
  write(*preference, Preference{kPreferenceTag, 0, {kDefaultAlignment, kDefaultAlignment, kDefaultAlignment, kDefaultAlignment}});
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t preference) {
  delete preference;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t preference,
                                                    cublasLtMatmulPreferenceAttributes_t attribute, const void* buffer,
                                                    size_t bytes) {
  if (!preference || read<Preference>(preference).tag != kPreferenceTag || !buffer)
    return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceSetAttribute: no preference or no value");
  Preference value = read<Preference>(preference);
  switch (attribute) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
      if (bytes != sizeof(uint64_t)) return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceSetAttribute: the workspace size takes 8 bytes");
      std::memcpy(&value.workspace, buffer, sizeof value.workspace);
      break;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: {
      uint32_t alignment = 0;
      if (bytes != sizeof alignment) return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceSetAttribute: an alignment takes 4 bytes");
      std::memcpy(&alignment, buffer, sizeof alignment);
      if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceSetAttribute: alignment " +
                                                        std::to_string(alignment) + " is not a power of two");
      value.alignment[attribute - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = alignment;
      break;
    }
    default:
      return failure(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmulPreferenceSetAttribute: attribute " +
                                                      std::to_string(int(attribute)) + " is not emulated");
  }
  write(preference, value);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t preference, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* returned) {
  if (!handle || !desc || read<Desc>(desc).tag != kDescTag || !valid_layout(a) || !valid_layout(b) || !valid_layout(c) ||
      !valid_layout(d) || !preference || read<Preference>(preference).tag != kPreferenceTag || requested < 1 ||
      !results || !returned)
    return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulAlgoGetHeuristic: a null or invalid argument");
  uint64_t k = 0;
  if (const cublasStatus_t status = check_problem(read<Desc>(desc), read<Layout>(a), read<Layout>(b), read<Layout>(c),
                                                  read<Layout>(d), &k))
    return status;
  const Preference chosen_for = read<Preference>(preference);
  Algo algo{kAlgoTag, {}};
  std::memcpy(algo.alignment, chosen_for.alignment, sizeof algo.alignment);
  results[0] = cublasLtMatmulHeuristicResult_t{};
  write(&results[0].algo, algo);
  results[0].workspaceSize = 0;
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1.0f;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha_pointer,
                              const void* a, cublasLtMatrixLayout_t a_layout, const void* b,
                              cublasLtMatrixLayout_t b_layout, const void* beta_pointer, const void* c,
                              cublasLtMatrixLayout_t c_layout, void* d, cublasLtMatrixLayout_t d_layout,
                              const cublasLtMatmulAlgo_t* algo_pointer, void* /*workspace*/, size_t /*workspace_bytes*/,
                              cudaStream_t stream) {
  RuntimeLock lock(runtime_mutex());
  if (!handle) return failure(CUBLAS_STATUS_NOT_INITIALIZED, "cublasLtMatmul: the handle is null");
  if (!desc || read<Desc>(desc).tag != kDescTag || !valid_layout(a_layout) || !valid_layout(b_layout) ||
      !valid_layout(c_layout) || !valid_layout(d_layout) || !alpha_pointer || !beta_pointer)
    return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul: a null or invalid descriptor, layout, alpha or beta");
  Algo algo{kAlgoTag, {kDefaultAlignment, kDefaultAlignment, kDefaultAlignment, kDefaultAlignment}};
  if (algo_pointer) {
    algo = read<Algo>(algo_pointer);
    if (algo.tag != kAlgoTag)
      return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul: the algorithm does not come from cublasLtMatmulAlgoGetHeuristic");
  }
  const Desc op = read<Desc>(desc);
  const Layout la = read<Layout>(a_layout), lb = read<Layout>(b_layout), lc = read<Layout>(c_layout),
               ld = read<Layout>(d_layout);
  uint64_t k = 0;
  if (const cublasStatus_t status = check_problem(op, la, lb, lc, ld, &k)) return status;
  float alpha = 0.0f, beta = 0.0f;  // CUBLASLT_POINTER_MODE_HOST, the default and the only one emulated
  std::memcpy(&alpha, alpha_pointer, sizeof alpha);
  std::memcpy(&beta, beta_pointer, sizeof beta);
  const bool reads_c = beta != 0.0f;  // as in BLAS, C is not read when beta is 0 (it may hold NaN)
  for (const Operand& operand : {Operand{"A", a, &la, algo.alignment[0]}, Operand{"B", b, &lb, algo.alignment[1]},
                                 Operand{"D", d, &ld, algo.alignment[3]}})
    if (const cublasStatus_t status = check_operand(operand)) return status;
  if (reads_c)
    if (const cublasStatus_t status = check_operand(Operand{"C", c, &lc, algo.alignment[2]})) return status;
  if (!resolve_stream(stream)) return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul: the stream is not a live stream");

  enqueue(stream, "cublasLtMatmul", [=] {
    const int m = int(ld.rows), n = int(ld.cols), depth = int(k);
    if (m == 0 || n == 0) return;
    const std::vector<float> wide_a = widen(a, la), wide_b = widen(b, lb);
    const std::vector<float> old_c = reads_c ? widen(c, lc) : std::vector<float>();
    std::vector<float> product(size_t(m) * size_t(n), 0.0f);
    if (depth > 0)
      cblas_sgemm(CblasColMajor, op.transa == CUBLAS_OP_T ? CblasTrans : CblasNoTrans,
                  op.transb == CUBLAS_OP_T ? CblasTrans : CblasNoTrans, m, n, depth, 1.0f, wide_a.data(),
                  std::max(int(la.rows), 1), wide_b.data(), std::max(int(lb.rows), 1), 0.0f, product.data(), m);
    for (size_t j = 0; j < size_t(n); ++j)
      for (size_t i = 0; i < size_t(m); ++i) {
        const size_t at = i + j * size_t(m);
        const float value = reads_c ? alpha * product[at] + beta * old_c[at] : alpha * product[at];
        store(d, ld.type, i + j * size_t(ld.ld), value);
      }
  });
  count_matmul();
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
