// GPU kernel throughput: the bf16 GEMM rate of cuBLASLt through ops::matmul (the ceiling MFU is
// measured against in the same run), t6's causal attention forward and backward on device tensors,
// and (without GQA) TPA's attention over its six factors (RoPE inside), fused (q/k/v built on chip)
// and materialised (q/k/v in global memory, then the plain kernels). scripts/bench_sdpa.py times
// PyTorch's SDPA on the same q/k/v shapes: the fused op costs nothing for building q/k/v when its
// times are no more than SDPA's.
//   bench_cuda_kernels [--batch 16 --seq 1024 --heads 34 --kv-heads 34 --head-dim 64 --q-rank 6 --rank 2
//                       --gemm 8192 --repeats 20]
// Last line: RESULT bench_cuda_kernels gemm_tflops=... attention_forward_ms=... attention_forward_tflops=...
//            attention_backward_ms=... attention_backward_tflops=... [tpa_fused_forward_ms=...
//            tpa_fused_backward_ms=... tpa_materialised_forward_ms=... tpa_materialised_backward_ms=...]
//            (or skipped=no_gpu)
// Each figure is the median of `repeats` timed runs after 3 warm-ups, each run bracketed by device
// synchronisations (host clock); inputs are random (never zeros, METHOD.md).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "core/device_memory.h"
#include "core/error.h"
#include "kernels/device.h"
#include "kernels/ops.h"

#ifdef T6_WITH_CUDA
#include <cuda_runtime.h>
#endif

using namespace t6;

namespace {

void synchronize() {
#ifdef T6_WITH_CUDA
  cudaDeviceSynchronize();
#endif
}

// Median seconds of `repeats` runs of body after 3 warm-ups.
double median_seconds(int64_t repeats, const std::function<void()>& body) {
  for (int i = 0; i < 3; ++i) body();
  synchronize();
  std::vector<double> seconds;
  for (int64_t i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    synchronize();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

// A device buffer of `shape` filled with random bf16 values in [-1, 1] (or zeros for outputs).
DeviceBuffer random_bf16(Shape shape, std::mt19937_64& rng, bool random = true) {
  std::vector<uint16_t> bits(size_t(shape.numel()), 0);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  if (random)
    for (uint16_t& value : bits) value = float_to_bf16_bits(uniform(rng));
  DeviceBuffer buffer(bits.size() * 2);
  copy_tensor(buffer.as(shape, DType::BF16), Tensor(bits.data(), shape, DType::BF16));
  return buffer;
}

struct TpaShape {
  int64_t B, T, H, D, Rq, R;
};
struct TpaTimes {
  double fused_forward, fused_backward, materialised_forward, materialised_backward;
};

// TPA's attention over random bf16 factors (A_q, B_q, A_k, B_k, A_v, B_v, as the layer's linear maps
// give them) on both paths, each a forward and then a backward with fp32 factor gradients. Prints
// them beside the attention's FLOPs on q/k/v, the work SDPA does on the same shapes.
TpaTimes time_tpa_attention(const TpaShape& s, int64_t repeats, std::mt19937_64& rng) {
  const std::vector<Shape> shapes{{s.B, s.T, s.H, s.Rq}, {s.B, s.T, s.Rq, s.D}, {s.B, s.T, s.H, s.R},
                                  {s.B, s.T, s.R, s.D},  {s.B, s.T, s.H, s.R},  {s.B, s.T, s.R, s.D}};
  std::vector<DeviceBuffer> factor_buffers, gradient_buffers;
  std::vector<Tensor> factors, gradients;
  for (const Shape& shape : shapes) {
    factor_buffers.push_back(random_bf16(shape, rng));
    factors.push_back(factor_buffers.back().as(shape, DType::BF16));
    gradient_buffers.emplace_back(size_t(shape.numel()) * 4);
    gradients.push_back(gradient_buffers.back().as(shape, DType::F32));
  }
  const ops::TpaFactors f{factors[0], factors[1], factors[2], factors[3], factors[4], factors[5]};
  const ops::TpaFactors g{gradients[0], gradients[1], gradients[2], gradients[3], gradients[4], gradients[5]};
  const Shape y_shape{s.B, s.T, s.H, s.D};
  const DeviceBuffer y(size_t(y_shape.numel()) * 2), lse(size_t(s.B * s.H * s.T) * 4);
  const DeviceBuffer dy = random_bf16(y_shape, rng), cos(size_t(s.T * s.D / 2) * 4), sin(cos.bytes());
  const Tensor cos_view = cos.as({s.T, s.D / 2}, DType::F32), sin_view = sin.as({s.T, s.D / 2}, DType::F32);
  ops::rope_tables(cos_view, sin_view);
  const int64_t workspace_elements = ops::tpa_rotary_attention_workspace_elements(s.B, s.T, s.H, s.Rq, s.R, s.D);
  const DeviceBuffer workspace(size_t(workspace_elements) * 2);
  const Tensor y_view = y.as(y_shape, DType::BF16), lse_view = lse.as({s.B, s.H, s.T}, DType::F32);
  const Tensor dy_view = dy.as(y_shape, DType::BF16);
  TpaTimes times{};
  for (const ops::TpaAttentionPath path : {ops::TpaAttentionPath::Fused, ops::TpaAttentionPath::Materialised}) {
    const ops::TpaAttentionChoice choice{path, 0};
    const Tensor scratch = path == ops::TpaAttentionPath::Fused ? Tensor() : workspace.as({workspace_elements}, DType::BF16);
    const double forward = median_seconds(
        repeats, [&] { ops::tpa_rotary_attention_forward(y_view, lse_view, f, cos_view, sin_view, scratch, choice); });
    const double backward = median_seconds(repeats, [&] {
      ops::tpa_rotary_attention_backward(g, dy_view, y_view, lse_view, f, cos_view, sin_view, scratch, choice);
    });
    (path == ops::TpaAttentionPath::Fused ? times.fused_forward : times.materialised_forward) = forward;
    (path == ops::TpaAttentionPath::Fused ? times.fused_backward : times.materialised_backward) = backward;
  }
  const double forward_flop = 2.0 * 2.0 * double(s.B * s.H) * double(s.T) * double(s.T) * double(s.D) / 2.0;
  std::printf("TPA attention B %lld T %lld H %lld D %lld Rq %lld R %lld, TFLOP/s of the attention on q/k/v alone:\n"
              "  fused:        forward %.3f ms (%.1f), backward %.3f ms (%.1f)\n"
              "  materialised: forward %.3f ms (%.1f), backward %.3f ms (%.1f)\n",
              (long long)s.B, (long long)s.T, (long long)s.H, (long long)s.D, (long long)s.Rq, (long long)s.R,
              times.fused_forward * 1e3, forward_flop / times.fused_forward / 1e12, times.fused_backward * 1e3,
              2.5 * forward_flop / times.fused_backward / 1e12, times.materialised_forward * 1e3,
              forward_flop / times.materialised_forward / 1e12, times.materialised_backward * 1e3,
              2.5 * forward_flop / times.materialised_backward / 1e12);
  return times;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"GPU kernel throughput: cuBLASLt bf16 GEMM rate and t6's causal attention forward/backward"};
  int64_t B = 16, T = 1024, H = 34, Hkv = 34, D = 64, Rq = 6, R = 2, n = 8192, repeats = 20;
  app.add_option("--batch", B, "sequences")->capture_default_str();
  app.add_option("--seq", T, "sequence length")->capture_default_str();
  app.add_option("--heads", H, "query heads")->capture_default_str();
  app.add_option("--kv-heads", Hkv, "KV heads (a divisor of --heads; GQA when fewer)")->capture_default_str();
  app.add_option("--head-dim", D, "head dimension, 1..128")->capture_default_str();
  app.add_option("--q-rank", Rq, "TPA's query rank (0: no TPA figures)")->capture_default_str();
  app.add_option("--rank", R, "TPA's key and value rank")->capture_default_str();
  app.add_option("--gemm", n, "size of the square bf16 GEMM")->capture_default_str();
  app.add_option("--repeats", repeats, "timed runs (the median is reported)")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  try {
    T6_CHECK(Hkv >= 1 && H % Hkv == 0, "--kv-heads ", Hkv, " does not divide --heads ", H);
    if (cuda_device_count() == 0) {
      std::printf("no GPU: nothing to measure\nRESULT bench_cuda_kernels skipped=no_gpu\n");
      return 0;
    }
    cuda_select_device(0);
    const CudaDeviceInfo device = cuda_device_info(0);
    std::mt19937_64 rng(7);
    DeviceBuffer a = random_bf16({n, n}, rng), b = random_bf16({n, n}, rng), c = random_bf16({n, n}, rng, false);
    const double gemm_seconds = median_seconds(repeats, [&] {
      ops::matmul(c.as({n, n}, DType::BF16), a.as({n, n}, DType::BF16), b.as({n, n}, DType::BF16), false, true);
    });
    const double gemm_tflops = 2.0 * double(n) * double(n) * double(n) / gemm_seconds / 1e12;

    const Shape q_shape{B, T, H, D}, kv_shape{B, T, Hkv, D};
    DeviceBuffer q = random_bf16(q_shape, rng), k = random_bf16(kv_shape, rng), v = random_bf16(kv_shape, rng);
    DeviceBuffer dy = random_bf16(q_shape, rng), y = random_bf16(q_shape, rng, false);
    DeviceBuffer dq = random_bf16(q_shape, rng, false), dk = random_bf16(kv_shape, rng, false);
    DeviceBuffer dv = random_bf16(kv_shape, rng, false), lse(size_t(B * H * T) * 4);
    const ops::HeadMap heads{0, H / Hkv, 0};
    auto bf16 = [](const DeviceBuffer& buffer, Shape shape) { return buffer.as(shape, DType::BF16); };
    const Tensor lse_view = lse.as({B, H, T}, DType::F32);
    const double forward_seconds = median_seconds(repeats, [&] {
      ops::attention_forward(bf16(y, q_shape), lse_view, bf16(q, q_shape), bf16(k, kv_shape), bf16(v, kv_shape), {},
                             heads);  // the kernels need no scratch
    });
    const double backward_seconds = median_seconds(repeats, [&] {
      ops::attention_backward(bf16(dq, q_shape), bf16(dk, kv_shape), bf16(dv, kv_shape), bf16(dy, q_shape),
                              bf16(q, q_shape), bf16(k, kv_shape), bf16(v, kv_shape), bf16(y, q_shape), lse_view, {},
                              heads);
    });
    // Causal: half of the T × T scores. Forward 2 products (QKᵀ, PV), backward 5 (QKᵀ, dO·Vᵀ, dV, dK, dQ);
    // the FLOP counts of FlashAttention's papers, which SDPA's figures also use.
    const double forward_flop = 2.0 * 2.0 * double(B * H) * double(T) * double(T) * double(D) / 2.0;
    const double backward_flop = 2.5 * forward_flop;
    std::printf("GPU %s, %d SMs\n", device.name.c_str(), device.multiprocessors);
    std::printf("bf16 GEMM %lld^3: %.3f ms, %.1f TFLOP/s\n", (long long)n, gemm_seconds * 1e3, gemm_tflops);
    std::printf("attention B %lld T %lld H %lld Hkv %lld D %lld: forward %.3f ms (%.1f TFLOP/s), backward %.3f ms "
                "(%.1f TFLOP/s)\n",
                (long long)B, (long long)T, (long long)H, (long long)Hkv, (long long)D, forward_seconds * 1e3,
                forward_flop / forward_seconds / 1e12, backward_seconds * 1e3, backward_flop / backward_seconds / 1e12);
    const bool with_tpa = Rq > 0 && Hkv == H;  // TPA has no grouped heads
    const TpaTimes tpa = with_tpa ? time_tpa_attention({B, T, H, D, Rq, R}, repeats, rng) : TpaTimes{};
    std::printf("RESULT bench_cuda_kernels gemm_tflops=%.1f attention_forward_ms=%.3f attention_forward_tflops=%.1f "
                "attention_backward_ms=%.3f attention_backward_tflops=%.1f",
                gemm_tflops, forward_seconds * 1e3, forward_flop / forward_seconds / 1e12, backward_seconds * 1e3,
                backward_flop / backward_seconds / 1e12);
    if (with_tpa) {
      std::printf(" tpa_fused_forward_ms=%.3f tpa_fused_backward_ms=%.3f tpa_materialised_forward_ms=%.3f "
                  "tpa_materialised_backward_ms=%.3f",
                  tpa.fused_forward * 1e3, tpa.fused_backward * 1e3, tpa.materialised_forward * 1e3,
                  tpa.materialised_backward * 1e3);
    }
    std::printf("\n");
    return 0;
  } catch (const Error& error) {
    std::fprintf(stderr, "bench_cuda_kernels: error: %s\n", error.what());
    return 1;
  }
}
