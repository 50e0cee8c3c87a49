// ctest-labels: conformance;gpu
// ctest-timeout: 300
// The reference fixtures on the CUDA backend: every *.safetensors file of $T6_FIXTURE_DIR (default
// tests/fixtures), enumerated when the binary starts as test_conformance.cpp does, rebuilt from its
// metadata on the device, where the matmuls and the attention read bf16 (DESIGN.md, Precision):
// logits, loss and every gradient within the bf16 tolerances below; T6 through both the fused and the
// materialised TPA attention. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/safetensors.h"
#include "common/device_arrays.h"
#include "common/reference_fixtures.h"
#include "common/test_paths.h"
#include "core/device_memory.h"
#include "kernels/device.h"
#include "model/language_model.h"
#include "train_state/state_dict.h"

using namespace t6;
using namespace t6::testing;

namespace {

// bf16 keeps 8 significant bits and rounds to nearest: every value stored in bf16 (a weight of the
// matmul copy, a saved activation, a gradient entering a matmul) is off by at most u = 2^-8 of itself.
constexpr double kBf16Rounding = 1.0 / 256;

// Each bound counts the bf16 roundings on the longest path to the checked value, each worth u of the
// magnitudes it touches (fp32 accumulation adds nothing comparable). Added with aligned signs they
// give the worst case; with the random signs rounding has, they add in quadrature (sqrt(count)·u).
// The emulated GPU's figures (printed per fixture) sit near the quadrature sum; the bounds sit
// between it and the worst case, leaving room for a real GPU's tensor-core summation order, which
// the emulation does not reproduce (CUDA_EMULATION.md), while a stale or unconverted operand (a
// whole value wrong, not u of it) is caught by orders of magnitude.
//
// Logits, element-wise against 8u of the largest |logit|: per block the normed input, the weights,
// the saved factors or q/k/v, y and the output projection's weights of the attention branch, and the
// normed input, the weights, pre_gate/up, the gated hidden and c_proj's weights of the MLP (about 10),
// over L = 2 blocks, then the final norm and the head's copy of the embedding: 22 roundings, 4.7u in
// quadrature, 22u aligned. The emulated GPU gives at most 2.3u.
constexpr double kLogitsTolerance = 8 * kBf16Rounding;
// Loss, relative, 1.5u: the mean cross-entropy of 48 rows moves by at most twice the largest logit
// error of a row (log-sum-exp and the target logit are each 1-Lipschitz in the logits), and the
// rows' errors of random sign cancel in the mean (÷ sqrt(48) ≈ 7) against a loss near ln V ≈ 4.9:
// 2·8u·max|logit| / 7 / 4.9 ≈ 1.4u for the fixtures' logits, whose largest magnitude is below 3.
// The emulated GPU gives at most 0.05u.
constexpr double kLossTolerance = 1.5 * kBf16Rounding;
// Gradients, element-wise against 16u of each tensor's largest |element|: a weight gradient sums
// N = 48 rows of (gradient × saved input), both bf16 (2u per term), and the gradient reaching the
// first block has passed, backwards, the dlogits copy and the head's weights, then per block the
// bf16 copies of the incoming gradient, of the MLP's and the attention's inner gradients and their
// weights (8 each), on top of the saved input's 3 forward roundings: about 21 roundings, 4.6u in
// quadrature, 21u aligned. The emulated GPU gives at most 5.7u (TPA's W_A_k, whose gradient passes
// the softmax's backward).
constexpr double kGradientTolerance = 16 * kBf16Rounding;

struct DeviceResults {
  std::vector<float> logits, grads;  // grads: the flat local buffer (ModelWeights' layout)
  float loss = 0;
};

// Forward logits, then loss and gradients of one forward_backward, of the fixture's weights and batch
// on the CUDA backend.
DeviceResults run_on_device(const SafetensorsReader& file, const ModelConfig& config, int64_t batch, int64_t seq_len,
                            const ops::TpaAttentionChoice& choice) {
  ModelWeights host(config, 0, 1, 1, false);
  load_state_dict(file, host, "param.");
  LanguageModel model(config, batch, seq_len, nullptr, 1, true, Device::CUDA);
  model.choose_tpa_attention(choice);
  ModelWeights& weights = model.weights();
  copy_tensor(weights.params(), host.params());
  weights.refresh_matmul_copy();

  const DeviceArray<int32_t> inputs(file.read_i32("input.idx")), targets(file.read_i32("input.targets"));
  const Shape tokens{batch, seq_len};
  DeviceResults results;
  const DeviceArray<float> logits(size_t(batch * seq_len * config.vocab_size));
  model.forward_logits(inputs.view().view(tokens), logits.view().view({batch, seq_len, config.vocab_size}));
  results.logits = logits.download();
  weights.zero_grads();
  results.loss = model.forward_backward(inputs.view().view(tokens), targets.view().view(tokens), 1.0f);
  results.grads.resize(size_t(weights.table().local_numel()));
  copy_tensor(Tensor(results.grads.data(), {weights.table().local_numel()}, DType::F32), weights.grads());
  return results;
}

void check_on_device(const std::filesystem::path& path, const ops::TpaAttentionChoice& choice) {
  const SafetensorsReader file(path.string());
  const ModelConfig config = config_of_state_dict(file, nullptr);
  const int64_t batch = metadata_int(file, "batch"), seq_len = metadata_int(file, "seq_len");
  const DeviceResults device = run_on_device(file, config, batch, seq_len, choice);

  const std::vector<float> reference_logits = file.read_f32("out.logits");
  ASSERT_EQ(device.logits.size(), reference_logits.size());
  const double logit_scale = max_abs(reference_logits);
  const double logits_error =
      expect_close("logits", device.logits.data(), reference_logits, kLogitsTolerance * logit_scale) / logit_scale;

  const double reference_loss = file.read_f32("out.loss")[0];
  const double loss_error = std::fabs(double(device.loss) - reference_loss) / std::fabs(reference_loss);
  EXPECT_TRUE(loss_error <= kLossTolerance) << "loss " << device.loss << " against the reference's " << reference_loss;

  const ModelWeights shapes = ModelWeights::shapes_only(config, 0, 1);
  double gradients_error = 0;
  std::string worst_gradient;
  for (const LocalParam& entry : shapes.table().params()) {
    const std::vector<float> reference = file.read_f32("grad." + entry.spec.name);
    ASSERT_EQ(int64_t(reference.size()), entry.numel()) << entry.spec.name;
    const double scale = max_abs(reference);
    const double error = expect_close("grad." + entry.spec.name, device.grads.data() + entry.flat_offset, reference,
                                      kGradientTolerance * scale) / scale;
    if (!(error <= gradients_error)) gradients_error = error, worst_gradient = entry.spec.name;
  }
  // What the device gave, in units of u, beside the bounds.
  std::printf("%s %s: logits %.3f u (bound %.1f), loss %.3f u (bound %.1f), gradients %.3f u (%s; bound %.1f)\n",
              path.filename().string().c_str(),
              choice.path == ops::TpaAttentionPath::Fused ? "fused" : "materialised", logits_error / kBf16Rounding,
              kLogitsTolerance / kBf16Rounding, loss_error / kBf16Rounding, kLossTolerance / kBf16Rounding,
              gradients_error / kBf16Rounding, worst_gradient.c_str(), kGradientTolerance / kBf16Rounding);
}

class DeviceConformance : public ::testing::TestWithParam<std::filesystem::path> {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU (or a build without CUDA): the device path is not run";
  }
};

TEST_P(DeviceConformance, LogitsLossAndGradientsMatchTheReferenceInBf16) {
  const SafetensorsReader file(GetParam().string());
  const ModelConfig config = config_of_state_dict(file, nullptr);
  if (!config.factorised_query()) return check_on_device(GetParam(), {});
  for (const ops::TpaAttentionPath path : {ops::TpaAttentionPath::Fused, ops::TpaAttentionPath::Materialised}) {
    SCOPED_TRACE(path == ops::TpaAttentionPath::Fused ? "fused TPA attention" : "materialised TPA attention");
    check_on_device(GetParam(), {path, 0});
  }
}

// The fixture's file name, as GoogleTest names a parameter (letters, digits and underscores).
std::string fixture_name(const ::testing::TestParamInfo<std::filesystem::path>& info) {
  std::string name = info.param.stem().string();
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DeviceConformance, ::testing::ValuesIn(fixture_files()), fixture_name);

// An empty or missing fixture directory is a failure, not a pass (tests/fixtures/README.md).
TEST(DeviceConformanceFixtures, TheFixtureDirectoryHoldsFixtures) {
  EXPECT_FALSE(fixture_files().empty()) << "no *.safetensors fixture in " << fixture_dir()
                                        << " (set T6_FIXTURE_DIR to a directory of fixtures)";
}

}  // namespace
