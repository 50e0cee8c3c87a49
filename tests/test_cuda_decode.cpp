// ctest-labels: gpu
// ctest-timeout: 300
// Decoding on the GPU against the CPU: the decode attention ops' CUDA twins (split-KV over the factor
// cache, and over cached keys and values) against the CPU ops on the same cache numbers, and the
// cache writes, on odd shapes: lengths that divide neither the block nor the piece, heads not a
// multiple of 32, ranks 1 and 2, query ranks 1 to 6, head widths 16 and 64, rows of different slots
// and lengths in one call, fp32 and bf16 caches. Then the decoder on the GPU against the decoder on the
// CPU: the same greedy tokens, logits within a stated tolerance, and no allocation per decode step.
// Skips itself where there is no GPU.
//
// Tolerance: both sides compute in fp32 from the same (rounded) numbers and differ only in summation
// order and in exp (the CPU's vector_exp against expf): outputs are averages of numbers in [−1, 1),
// and the largest difference measured over every case here is 1.2e-7 (one fp32 ulp near 1); 1e-6
// allows eight. A merge that drops one piece's rescale moves outputs by 1e-5 and more. The cache
// writes are exact (the same rounding to nearest even).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "common/decode_test_inputs.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "core/bf16.h"
#include "core/device_memory.h"
#include "infer/decode_backend.h"
#include "infer/decoder.h"
#include "infer/generation.h"
#include "infer/model_source.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "train_state/state_dict.h"
#ifdef T6_CUDA_EMU
#include "cuda_emu_counters.h"
#include "cuda_emu_schedule.h"
#endif

namespace t6 {
namespace {

using testing::DecodeCallRows;
using testing::uniform_values;

constexpr double kTolerance = 1e-6;

// The same numbers in host memory and on the GPU, as F32 or BF16 (then rounded on both sides).
struct Twin {
  std::vector<float> values;
  std::vector<uint16_t> bits;
  Tensor host;
  DeviceBuffer buffer;
  Tensor device;
  Twin(Shape shape, DType dtype, uint32_t seed) : values(uniform_values(shape.numel(), seed)) {
    if (dtype == DType::BF16) {
      for (float value : values) bits.push_back(float_to_bf16_bits(value));
      host = Tensor(bits.data(), shape, DType::BF16);
    } else {
      host = Tensor(values.data(), shape, DType::F32);
    }
    buffer = DeviceBuffer(host.bytes());
    device = buffer.as(shape, dtype);
    copy_tensor(device, host);
  }
};

// A device output whose every byte is 0xFF (NaN), so an element a kernel forgets to write fails.
struct Poisoned {
  DeviceBuffer buffer;
  Tensor device;
  Poisoned(Shape shape, DType dtype = DType::F32) : buffer(size_t(shape.numel()) * dtype_size(dtype)) {
    device = buffer.as(shape, dtype);
    std::vector<unsigned char> bytes(device.bytes(), 0xFF);
    copy_tensor(device, Tensor(bytes.data(), shape, dtype));
  }
  std::vector<float> download() const {
    std::vector<float> out(size_t(device.numel()));
    copy_tensor(Tensor(out.data(), device.shape(), DType::F32), device);
    return out;
  }
};

// The workspace of a call on each side: the CPU's for one thread, the GPU's partial states as a
// decoder plans them.
struct Workspaces {
  std::vector<float> per_thread, partials;
  ops::DecodeWorkspace cpu, gpu;
  Poisoned device_partials;
  Workspaces(int64_t thread_elements, int64_t partial_elements)
      : per_thread(size_t(thread_elements)),
        partials(size_t(ops::kDecodePartialStates * partial_elements)),
        device_partials({ops::kDeviceDecodePartialStates, partial_elements}) {
    cpu = {Tensor(per_thread.data(), {1, thread_elements}, DType::F32),
           Tensor(partials.data(), {ops::kDecodePartialStates, partial_elements}, DType::F32)};
    gpu = {Tensor(), device_partials.device};
  }
};

// Every element within the tolerance; a NaN fails (the comparison is false).
void expect_close(const std::vector<float>& gpu, const std::vector<float>& cpu, const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i)
    ASSERT_TRUE(std::fabs(double(gpu[i]) - double(cpu[i])) <= kTolerance)
        << what << ", element " << i << ": GPU " << gpu[i] << ", CPU " << cpu[i];
}

class CudaDecode : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU (or a build without CUDA): the CUDA decode ops are not run";
    cuda_select_device(0);
    // The CPU side is only the reference: one thread, so that an OpenMP team spinning on a shared
    // machine does not cost more than the emulated GPU.
    omp_set_num_threads(1);
  }
};

// Lengths past 256 are cut into pieces of whole 64-position tiles on the GPU (513 into 3, 1537 into 7;
// the CPU cuts past 512), whose states merge on the device.
constexpr int64_t kLengths[] = {1, 7, 513, 1537};
constexpr int64_t kCacheLength = 1537;

struct TpaCase {
  int64_t H, D, R, Rq;  // Rq 0: KVonly's q̃
  DType dtype;
  int64_t block;
};

std::string describe(const TpaCase& c) {
  return str(c.Rq > 0 ? "T6" : "KVonly", " H ", c.H, " D ", c.D, " R ", c.R, " Rq ", c.Rq, " ", dtype_name(c.dtype),
             " block ", c.block);
}

// y of tpa_decode_attention on the GPU and on the CPU, for rows over the same factor cache.
void check_tpa_case(const TpaCase& c) {
  const int64_t H = c.H, D = c.D, R = c.R, Rq = c.Rq, T = kCacheLength;
  const Twin A_k({3, T, R, H}, c.dtype, 1), B_k({3, T, R, D}, c.dtype, 2), A_v({3, T, R, H}, c.dtype, 3),
      B_v({3, T, R, D}, c.dtype, 4);
  const ops::TpaFactorCache host_cache{A_k.host, B_k.host, A_v.host, B_v.host};
  const ops::TpaFactorCache device_cache{A_k.device, B_k.device, A_v.device, B_v.device};
  for (bool single : {true, false})
    for (int64_t length : kLengths) {
      const DecodeCallRows rows(length, c.block, single);
      const int64_t N = rows.size();
      const Twin A_q({N, H, std::max<int64_t>(Rq, 1)}, DType::F32, 5), B_q({N, std::max<int64_t>(Rq, 1), D}, DType::F32, 6),
          q({N, H, D}, DType::F32, 7);
      ops::TpaDecodeQuery host_query, device_query;
      if (Rq > 0) host_query = {A_q.host, B_q.host, {}}, device_query = {A_q.device, B_q.device, {}};
      else host_query = {{}, {}, q.host}, device_query = {{}, {}, q.device};
      Workspaces workspaces(ops::tpa_decode_thread_elements(H, D, R, Rq, c.block, ops::TpaDecodeOrder::factorised, c.dtype),
                            ops::decode_partial_elements(H, D));
      std::vector<float> cpu(size_t(N * H * D));
      ops::tpa_decode_attention(Tensor(cpu.data(), {N, H, D}, DType::F32), host_query, host_cache, rows.view,
                                ops::TpaDecodeOrder::factorised, workspaces.cpu);
      const Poisoned y({N, H, D});
      ops::tpa_decode_attention(y.device, device_query, device_cache, rows.view, ops::TpaDecodeOrder::factorised,
                                workspaces.gpu);
      expect_close(y.download(), cpu, str(describe(c), ", ", N, " rows, length ", length));
    }
}

TEST_F(CudaDecode, FactorCacheAttentionMatchesTheCpuOpOnOddShapes) {
  const TpaCase cases[] = {
      {5, 16, 1, 1, DType::F32, 64},  {37, 64, 2, 6, DType::F32, 5},  {3, 16, 2, 4, DType::BF16, 64},
      {33, 64, 1, 2, DType::BF16, 5}, {6, 16, 2, 3, DType::F32, 64},  {7, 16, 2, 5, DType::BF16, 64},
      {7, 16, 2, 0, DType::F32, 5},   {34, 64, 1, 0, DType::BF16, 64},
  };
  for (const TpaCase& c : cases) check_tpa_case(c);
}

struct KvCase {
  const char* name;
  int64_t H, kv_heads, Dk, Dv;
  bool v_is_k;  // MLA: the latent row is its own value
};

TEST_F(CudaDecode, KeyValueCacheAttentionMatchesTheCpuOpForMhaGqaAndMla) {
  const KvCase cases[] = {{"MHA", 3, 3, 24, 24, false}, {"GQA", 6, 2, 20, 12, false}, {"MLA", 5, 1, 28, 28, true}};
  const int64_t T = kCacheLength;
  for (const KvCase& c : cases)
    for (DType dtype : {DType::F32, DType::BF16}) {
      const Twin k({3, T, c.kv_heads, c.Dk}, dtype, 11), v_own({3, T, c.kv_heads, c.Dv}, dtype, 12);
      const Twin& v = c.v_is_k ? k : v_own;
      for (bool single : {true, false})
        for (int64_t length : kLengths) {
          const DecodeCallRows rows(length, 64, single);
          const int64_t N = rows.size();
          const Twin q({N, c.H, c.Dk}, DType::F32, 13);
          Workspaces workspaces(ops::kv_decode_thread_elements(c.H, c.kv_heads, c.Dk, c.Dv, 64, dtype),
                                ops::decode_partial_elements(c.H, c.Dv));
          std::vector<float> cpu(size_t(N * c.H * c.Dv));
          ops::kv_decode_attention(Tensor(cpu.data(), {N, c.H, c.Dv}, DType::F32), q.host, k.host, v.host, rows.view,
                                   workspaces.cpu);
          const Poisoned y({N, c.H, c.Dv});
          ops::kv_decode_attention(y.device, q.device, k.device, v.device, rows.view, workspaces.gpu);
          expect_close(y.download(), cpu, str(c.name, " ", dtype_name(dtype), ", ", N, " rows, length ", length));
        }
    }
}

// The new rows' entries land at their slots and positions, transposed where asked, and rounded to
// bf16 bit for bit as the CPU rounds them; every other cache number is left as it was.
TEST_F(CudaDecode, CacheWritesEqualTheCpuBitForBit) {
  const int64_t N = 3, a = 5, b = 7, T = 9;
  for (DType dtype : {DType::F32, DType::BF16})
    for (bool transpose : {false, true}) {
      const Twin x({N, a, b}, DType::F32, 21), cache({4, T, transpose ? b : a, transpose ? a : b}, dtype, 22);
      std::vector<int64_t> slots = {3, 0, 3}, lengths = {2, 9, 5};
      const ops::DecodeRows rows{Tensor(slots.data(), {N}, DType::I64), Tensor(lengths.data(), {N}, DType::I64), 4};
      ops::decode_cache_write(cache.host, x.host, rows, transpose);
      ops::decode_cache_write(cache.device, x.device, rows, transpose);
      std::vector<unsigned char> device_bytes(cache.host.bytes());
      copy_tensor(Tensor(device_bytes.data(), cache.host.shape(), dtype), cache.device);
      EXPECT_EQ(std::memcmp(device_bytes.data(), cache.host.raw(), device_bytes.size()), 0)
          << dtype_name(dtype) << (transpose ? " transposed" : "");
    }
}

#ifdef T6_CUDA_EMU
// The emulated GPU runs blocks, and a block's threads between barriers, forward, reverse or in a
// seeded random order: the split-KV pieces and their merge must give the same bits in every one.
TEST_F(CudaDecode, SplitKvGivesTheSameBitsInEveryOrder) {
  using cuda_emu::ScheduleOrder;
  const int64_t H = 5, D = 16, R = 2, Rq = 3, T = 1300;
  const Twin A_k({3, T, R, H}, DType::BF16, 31), B_k({3, T, R, D}, DType::BF16, 32), A_v({3, T, R, H}, DType::BF16, 33),
      B_v({3, T, R, D}, DType::BF16, 34);
  const DecodeCallRows rows(T, 64, false);
  const Twin A_q({3, H, Rq}, DType::F32, 35), B_q({3, Rq, D}, DType::F32, 36);
  Workspaces workspaces(0, ops::decode_partial_elements(H, D));
  std::vector<std::vector<float>> results;
  for (ScheduleOrder order : {ScheduleOrder::Forward, ScheduleOrder::Reverse, ScheduleOrder::Random}) {
    cuda_emu::set_schedule_order(order);
    const Poisoned y({3, H, D});
    ops::tpa_decode_attention(y.device, {A_q.device, B_q.device, {}}, {A_k.device, B_k.device, A_v.device, B_v.device},
                              rows.view, ops::TpaDecodeOrder::factorised, workspaces.gpu);
    results.push_back(y.download());
  }
  cuda_emu::set_schedule_order(ScheduleOrder::Random);
  // Equal bits that are also right (a missing barrier can give the same NaNs in every order).
  Workspaces reference(ops::tpa_decode_thread_elements(H, D, R, Rq, 64, ops::TpaDecodeOrder::factorised, DType::BF16),
                       ops::decode_partial_elements(H, D));
  std::vector<float> cpu(size_t(3 * H * D));
  ops::tpa_decode_attention(Tensor(cpu.data(), {3, H, D}, DType::F32), {A_q.host, B_q.host, {}},
                            {A_k.host, B_k.host, A_v.host, B_v.host}, rows.view, ops::TpaDecodeOrder::factorised,
                            reference.cpu);
  expect_close(results[0], cpu, "forward order");
  for (size_t i = 1; i < results.size(); ++i)
    EXPECT_EQ(std::memcmp(results[i].data(), results[0].data(), results[0].size() * sizeof(float)), 0) << "order " << i;
}
#endif

TEST_F(CudaDecode, TheMaterialisedOrderIsRefusedOnTheGpu) {
  const Twin A_k({3, 4, 1, 2}, DType::F32, 1), B_k({3, 4, 1, 8}, DType::F32, 2), q({1, 2, 8}, DType::F32, 3);
  DecodeCallRows rows(4, 4, true);
  Workspaces workspaces(0, ops::decode_partial_elements(2, 8));
  const Poisoned y({1, 2, 8});
  try {
    ops::tpa_decode_attention(y.device, {{}, {}, q.device}, {A_k.device, B_k.device, A_k.device, B_k.device}, rows.view,
                              ops::TpaDecodeOrder::materialised, workspaces.gpu);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("factorised order only"), std::string::npos) << error.what();
  }
}

// ---- the decoder on the GPU against the decoder on the CPU ------------------------------------------

// Logits of the two decoders, as the largest |GPU − CPU| over a row relative to the row's largest
// |logit| (as test_decoder compares decoding with the full forward). The weights, the rows and the
// cache numbers are fp32 on both sides and only the summation order differs (cuBLASLt against the
// CPU's BLAS, the kernels against the CPU's blocks): measured below 1e-6, allowed 1e-5. A bf16 cache
// rounds entries computed in a different order, so an entry can land one bf16 ulp (2^-8 relative)
// apart: measured below 1e-3, allowed 4e-3.
constexpr double kDecoderFp32Tolerance = 1e-5;
constexpr double kDecoderBf16Tolerance = 4e-3;

double row_error(const float* gpu, const float* cpu, int64_t V) {
  double largest = 0, error = 0;
  for (int64_t i = 0; i < V; ++i) {
    largest = std::max(largest, double(std::fabs(cpu[i])));
    const double difference = std::fabs(double(gpu[i]) - double(cpu[i]));
    error = difference == difference ? std::max(error, difference) : INFINITY;  // NaN fails
  }
  return error / largest;
}

int32_t argmax(const float* row, int64_t V) { return int32_t(std::max_element(row, row + V) - row); }

// The fixtures' model with every parameter random (initialisation zeroes both c_proj), on the host
// and copied to the GPU.
struct TwinWeights {
  ModelWeights host, device;
  explicit TwinWeights(ModelKind kind)
      : host(testing::fixture_model_config(kind), 0, 1, 1, false),
        device(testing::fixture_model_config(kind), 0, 1, 1, false, Device::CUDA) {
    std::mt19937 generator(5);
    std::uniform_real_distribution<float> uniform(-0.25f, 0.25f);
    for (int64_t i = 0; i < host.params().numel(); ++i) host.params().data<float>()[i] = uniform(generator);
    copy_tensor(device.params(), host.params());
  }
};

// Two sequences (a prompt of 530 tokens, cut into pieces on the GPU, and one of 37) prefilled in one
// packed call in chunks of 256 rows, then `steps` greedy tokens each: both decoders must pick the
// same token at every step, with logits within `tolerance`. Returns the worst error seen.
double decode_side_by_side(const TwinWeights& weights, DType cache_dtype, int64_t steps, double tolerance,
                           const std::string& what) {
  const infer::DecodeOptions options{64, ops::TpaDecodeOrder::factorised, 256, cache_dtype};
  infer::Decoder cpu(weights.host, 2, 600, options), gpu(weights.device, 2, 600, options);
  const int64_t d = weights.host.config().n_embd, V = weights.host.config().vocab_size;
  std::vector<infer::SlotToken> tokens;
  for (int64_t t = 0; t < 530; ++t) tokens.push_back({0, int32_t((t * 37 + 11) % V)});
  for (int64_t t = 0; t < 37; ++t) tokens.push_back({1, int32_t((t * 53 + 3) % V)});
  double worst = 0;
  for (int64_t step = 0; step <= steps; ++step) {
    const int64_t N = int64_t(tokens.size());
    std::vector<float> hidden[2], logits[2];
    for (int side = 0; side < 2; ++side) {
      infer::Decoder& decoder = side == 0 ? cpu : gpu;
      hidden[side].assign(size_t(N * d), 0.0f);
      decoder.append(tokens, Tensor(hidden[side].data(), {N, d}, DType::F32));
      // Each sequence's last row: the prompts' ends (rows 529 and 636), then both rows of a step.
      std::vector<float> rows = hidden[side];
      if (step == 0) {
        rows.assign(hidden[side].begin() + 529 * d, hidden[side].begin() + 530 * d);
        rows.insert(rows.end(), hidden[side].end() - d, hidden[side].end());
      }
      logits[side].assign(size_t(2 * V), 0.0f);
      decoder.logits(Tensor(rows.data(), {2, d}, DType::F32), Tensor(logits[side].data(), {2, V}, DType::F32));
    }
    std::vector<infer::SlotToken> next;
    for (int64_t slot = 0; slot < 2; ++slot) {
      const float* cpu_row = logits[0].data() + slot * V;
      const float* gpu_row = logits[1].data() + slot * V;
      const double error = row_error(gpu_row, cpu_row, V);
      worst = std::max(worst, error);
      EXPECT_LE(error, tolerance) << what << ": sequence " << slot << ", step " << step;
      EXPECT_EQ(argmax(gpu_row, V), argmax(cpu_row, V)) << what << ": sequence " << slot << ", step " << step;
      next.push_back({slot, argmax(cpu_row, V)});
    }
    tokens = next;
  }
  return worst;
}

TEST_F(CudaDecode, TheDecoderOnTheGpuPicksTheCpuDecodersTokensForEveryKindAndCacheDtype) {
  for (ModelKind kind : {ModelKind::T6, ModelKind::T6_kvonly, ModelKind::llama_mha, ModelKind::llama_gqa}) {
    const TwinWeights weights(kind);
    for (DType cache_dtype : {DType::F32, DType::BF16}) {
      const std::string what = str(model_kind_name(kind), " ", dtype_name(cache_dtype), " cache");
      const double worst = decode_side_by_side(weights, cache_dtype, 24,
                                               cache_dtype == DType::F32 ? kDecoderFp32Tolerance : kDecoderBf16Tolerance, what);
      std::printf("%s: largest logit difference %.3g of the row's largest\n", what.c_str(), worst);
    }
  }
}

// What t6_generate --backend cuda does, from a safetensors export of a random T6: auto and cuda pick
// the GPU, the weights load onto it, and greedy generation there (t6_generate's loop, a batch of
// prompts of different lengths, a bf16 cache) gives the CPU's tokens.
TEST_F(CudaDecode, AModelLoadedOntoTheGpuGeneratesTheCpusGreedyTokens) {
  const ModelConfig config = testing::fixture_model_config(ModelKind::T6);
  ModelWeights weights(config, 0, 1, 1, false);
  std::mt19937 generator(9);
  std::uniform_real_distribution<float> uniform(-0.25f, 0.25f);
  for (int64_t i = 0; i < weights.params().numel(); ++i) weights.params().data<float>()[i] = uniform(generator);
  const std::string path = (testing::scratch_dir("cuda_decode") / "model.safetensors").string();
  save_state_dict(path, weights, DType::F32);
  const infer::ModelSource source = infer::open_model_source(path);
  EXPECT_EQ(infer::choose_decode_backend("auto", source.config, ops::TpaDecodeOrder::factorised).device, Device::CUDA);
  const infer::DecodeBackend backend = infer::choose_decode_backend("cuda", source.config, ops::TpaDecodeOrder::factorised);
  ASSERT_EQ(backend.device, Device::CUDA);
  infer::GenerationOptions options;
  options.max_new_tokens = 40, options.sampling.temperature = 0, options.stop_at_eot = false;
  const std::vector<std::vector<int32_t>> prompts = {{5, 9, 77, 3, 101}, {42}, {7, 7, 7}};
  std::vector<std::vector<int32_t>> continuations;
  for (Device device : {Device::CPU, backend.device}) {
    const std::unique_ptr<ModelWeights> loaded = infer::load_model_weights_on(source, device);
    ASSERT_EQ(loaded->device(), device);
    infer::Decoder decoder(*loaded, 3, 64, infer::DecodeOptions{16, ops::TpaDecodeOrder::factorised, 256, DType::BF16});
    infer::GenerationStats stats;
    for (const infer::Generated& generated : infer::generate(decoder, prompts, options, 0, nullptr, stats))
      continuations.push_back(generated.tokens);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(continuations[i].size(), 40u);
    EXPECT_EQ(continuations[prompts.size() + i], continuations[i]) << "prompt " << i;
  }
}

#ifdef T6_CUDA_EMU
// After the first step (cuBLASLt plans, the ops' scratch), a decode step allocates no device or
// pinned memory: the cache, the activations and the partial states were planned when the decoder
// was made.
TEST_F(CudaDecode, ADecodeStepAllocatesNothing) {
  const TwinWeights weights(ModelKind::T6);
  infer::Decoder decoder(weights.device, 2, 1200, infer::DecodeOptions{64, ops::TpaDecodeOrder::factorised, 256, DType::BF16});
  const int64_t d = weights.host.config().n_embd, V = weights.host.config().vocab_size;
  std::vector<infer::SlotToken> prompt;
  for (int64_t t = 0; t < 1100; ++t) prompt.push_back({t % 2, int32_t(t % V)});  // two rows of 550: cut into pieces
  std::vector<float> hidden(prompt.size() * size_t(d)), logits(size_t(2 * V));
  decoder.append(prompt, Tensor(hidden.data(), {int64_t(prompt.size()), d}, DType::F32));
  const std::vector<infer::SlotToken> step = {{0, 1}, {1, 2}};
  auto decode_step = [&] {
    decoder.append(step, Tensor(hidden.data(), {2, d}, DType::F32));
    decoder.logits(Tensor(hidden.data(), {2, d}, DType::F32), Tensor(logits.data(), {2, V}, DType::F32));
  };
  decode_step();
  cuda_emu::reset_runtime_counters();
  for (int i = 0; i < 5; ++i) decode_step();
  EXPECT_EQ(cuda_emu::runtime_counters().allocations, 0u);
  EXPECT_EQ(decoder.length(0), 556);
}
#endif

}  // namespace
}  // namespace t6
