// ctest-labels: gpu
// ctest-requires: T6_CUDA_EMU
// The TPA layer (src/model/tpa_attention.*) runs its factor maps as one GEMM (T6_SPEC.md 1; DESIGN.md,
// "The CUDA backend"), counted by the emulated cuBLASLt: the forward of a T6 or a KVonly layer is two
// matmuls (the stacked factor maps, c_proj) and its backward four (c_proj's weight gradient and dy,
// the stacked maps' weight gradient and dx), where separate maps take 7 and 14 (KVonly 6 and 12).
// The model code is the same on both backends, so the counts hold for the CPU as well; what the layer
// computes is checked by the fixtures (test_conformance, test_device_conformance), and that the
// stacked weights are the named parameters' memory by test_model_weights.
#include <gtest/gtest.h>

#include <memory>

#include "common/training_setup.h"
#include "core/arena.h"
#include "cuda_emu_counters.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "model/attention_layer.h"
#include "model/model_weights.h"

using namespace t6;
using namespace t6::testing;

namespace {

struct MatmulCounts {
  uint64_t forward = 0, backward = 0;
};

// One forward and one backward of layer 1 of the fixture-sized model of `kind` on the device, on
// zero inputs (only the calls are counted), with the matmuls of each.
MatmulCounts count_layer_matmuls(ModelKind kind, ops::TpaAttentionPath path) {
  cuda_select_device(0);
  const ModelConfig config = fixture_model_config(kind);
  ModelWeights weights(config, 0, 1, 1, true, Device::CUDA);
  weights.initialise(7);
  const std::unique_ptr<AttentionLayer> layer = make_attention_layer(weights, 1);
  const int64_t B = 2, T = 8, N = B * T, d = config.n_embd;
  LayerContext context;
  context.batch = B;
  context.seq_len = T;
  context.tpa_attention.path = path;
  Tensor x, dout, dx, out;
  const Arena arena(
      [&](Arena& a) {
        layer->plan_activations(a, B, T);
        context.scratch = a.take({layer->scratch_elements(B, T)});
        context.rope_cos = a.take({T, config.head_dim / 2});
        context.rope_sin = a.take({T, config.head_dim / 2});
        x = a.take({N, d}, weights.matmul_dtype());
        out = a.take({N, d});
        dout = a.take({N, d});
        dx = a.take({N, d});
      },
      Device::CUDA);
  ops::rope_tables(context.rope_cos, context.rope_sin);

  MatmulCounts counts;
  cuda_emu::reset_runtime_counters();
  layer->forward(context, x, out);
  counts.forward = cuda_emu::runtime_counters().matmuls;
  cuda_emu::reset_runtime_counters();
  layer->backward(context, x, dout, dx);
  counts.backward = cuda_emu::runtime_counters().matmuls;
  ops::wait_for_ops(Device::CUDA);
  return counts;
}

}  // namespace

TEST(TpaAttentionLayer, T6FactorMapsAreOneGemmForwardAndOneEachForDweightAndDxBackward) {
  for (const ops::TpaAttentionPath path : {ops::TpaAttentionPath::Fused, ops::TpaAttentionPath::Materialised}) {
    SCOPED_TRACE(path == ops::TpaAttentionPath::Fused ? "fused" : "materialised");
    const MatmulCounts counts = count_layer_matmuls(ModelKind::T6, path);
    EXPECT_EQ(counts.forward, 2u) << "the stacked factor maps and c_proj";
    EXPECT_EQ(counts.backward, 4u) << "c_proj's dW and dy, the stacked factor maps' dW and dx";
  }
}

TEST(TpaAttentionLayer, KvOnlyQueryAndFourFactorMapsAreOneGemm) {
  const MatmulCounts counts = count_layer_matmuls(ModelKind::T6_kvonly, ops::TpaAttentionPath::Fused);
  EXPECT_EQ(counts.forward, 2u) << "c_q with the four factor maps, and c_proj";
  EXPECT_EQ(counts.backward, 4u) << "c_proj's dW and dy, the stacked maps' dW and dx";
}
