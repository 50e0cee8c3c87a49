// ctest-labels: conformance
// Reference conformance: for every *.safetensors fixture in $T6_FIXTURE_DIR (default
// tests/fixtures), rebuild the model from the file's metadata alone and reproduce the reference's
// logits, loss, every gradient and three AdamW steps within the tolerances of tests/fixtures/README.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "checkpoint/safetensors.h"
#include "train_state/state_dict.h"
#include "common/reference_fixtures.h"
#include "common/test_paths.h"
#include "common/weight_comparison.h"
#include "model/language_model.h"
#include "train/adamw.h"
#include "train/grad_norm.h"

using namespace t6;
using t6::testing::expect_close;
using t6::testing::fixture_files;
using t6::testing::max_abs;
using t6::testing::metadata_double;
using t6::testing::metadata_int;

namespace {

void expect_relative(const std::string& what, double actual, double expected) {
  EXPECT_LE(std::fabs(actual - expected), 1e-5 * std::fabs(expected)) << what << ": " << actual << " vs reference " << expected;
}

void check_fixture(const std::filesystem::path& path) {
  const SafetensorsReader file(path.string());
  const ModelConfig config = config_of_state_dict(file, nullptr);
  const int64_t batch = metadata_int(file, "batch"), seq_len = metadata_int(file, "seq_len");
  LanguageModel model(config, batch, seq_len);
  ModelWeights& weights = model.weights();
  load_state_dict(file, weights, "param.");

  std::vector<int32_t> inputs = file.read_i32("input.idx"), targets = file.read_i32("input.targets");
  const Tensor input_tensor(inputs.data(), {batch, seq_len}, DType::I32);
  const Tensor target_tensor(targets.data(), {batch, seq_len}, DType::I32);

  // Forward: logits within 1e-5 of the largest |logit|.
  const std::vector<float> reference_logits = file.read_f32("out.logits");
  std::vector<float> logits(reference_logits.size());
  model.forward_logits(input_tensor, Tensor(logits.data(), {batch, seq_len, config.vocab_size}, DType::F32));
  expect_close("logits", logits.data(), reference_logits, 1e-5 * max_abs(reference_logits));

  // Loss and every gradient (tied weight: embedding + head), 1e-4 of each gradient's largest element.
  weights.zero_grads();
  const float loss = model.forward_backward(input_tensor, target_tensor, 1.0f);
  expect_relative("loss", loss, file.read_f32("out.loss")[0]);
  for (const LocalParam& entry : weights.table().params()) {
    const std::vector<float> reference = file.read_f32("grad." + entry.spec.name);
    expect_close("grad." + entry.spec.name, weights.grad(entry).data<float>(), reference, 1e-4 * max_abs(reference));
  }

  // AdamW steps on the same batch with global-norm clipping.
  const int64_t steps = metadata_int(file, "adamw_steps");
  const double lr = metadata_double(file, "lr"), max_norm = metadata_double(file, "clip_grad_norm");
  AdamWSettings settings;
  std::istringstream betas(file.metadata().at("betas"));
  char comma;
  double beta1, beta2;
  betas >> beta1 >> comma >> beta2;
  settings.beta1 = float(beta1);
  settings.beta2 = float(beta2);
  settings.eps = float(metadata_double(file, "eps"));
  settings.weight_decay = float(metadata_double(file, "weight_decay"));
  load_state_dict(file, weights, "param.");
  AdamW optimizer(weights.table().local_numel(), settings);
  const std::vector<float> reference_losses = file.read_f32("train.loss"), reference_norms = file.read_f32("train.grad_norm");
  ASSERT_EQ(int64_t(reference_losses.size()), steps);
  for (int64_t step = 0; step < steps; ++step) {
    weights.zero_grads();
    const float step_loss = model.forward_backward(input_tensor, target_tensor, 1.0f);
    const double norm = global_grad_norm(weights, weights.grads(), nullptr);
    expect_relative(str("train.loss[", step, "]"), step_loss, reference_losses[step]);
    expect_relative(str("train.grad_norm[", step, "]"), norm, reference_norms[step]);
    optimizer.step(weights.params(), weights.grads(), float(lr), clip_scale(norm, max_norm));
  }

  // Final weights: all but max(1, 0.1%) elements within 1e-5, every element within 0.1·lr.
  for (const LocalParam& entry : weights.table().params()) {
    const std::vector<float> reference = file.read_f32("after." + entry.spec.name);
    ASSERT_EQ(int64_t(reference.size()), entry.numel());
    t6::testing::expect_weights_match("after." + entry.spec.name, weights.param(entry).data<float>(), reference.data(),
                                      entry.numel(), 0.1 * lr);
  }
}

}  // namespace

TEST(Conformance, EveryFixtureReproducesTheReference) {
  const auto files = fixture_files();
  ASSERT_FALSE(files.empty()) << "no *.safetensors fixture in " << t6::testing::fixture_dir()
                              << " (set T6_FIXTURE_DIR to a directory of fixtures)";
  for (const auto& path : files) {
    SCOPED_TRACE(path.filename().string());
    std::printf("fixture %s\n", path.filename().string().c_str());
    check_fixture(path);
  }
}
