// The training step end to end on one batch: a tiny model of each kind, trained with clipping and
// AdamW on one fixed batch, must drive its loss far down in 50 steps (it memorises the batch). A
// sign error or a missing gradient anywhere stalls it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model/language_model.h"
#include "train/adamw.h"
#include "train/grad_norm.h"

using namespace t6;

namespace {

void expect_learns_fixed_batch(ModelKind kind) {
  // MLA: Dn 16, Dr 8, Cq 24, Ckv 16, value heads of 12.
  ModelConfig config{kind, 2, 64, 4, 16, 4, 2, kind == ModelKind::llama_gqa ? 2 : 1, 128, 8, 24, 16, 12};
  const int64_t batch = 4, seq_len = 16;
  LanguageModel model(config, batch, seq_len);
  model.weights().initialise(42);
  AdamW optimizer(model.weights().table().local_numel(), AdamWSettings{0.9f, 0.95f, 1e-8f, 0.1f});

  std::mt19937 generator(3);
  std::uniform_int_distribution<int32_t> token(0, int32_t(config.vocab_size) - 1);
  std::vector<int32_t> inputs(batch * seq_len), targets(batch * seq_len);
  for (size_t i = 0; i < inputs.size(); ++i) inputs[i] = token(generator), targets[i] = token(generator);
  const Tensor input_tensor(inputs.data(), {batch, seq_len}, DType::I32);
  const Tensor target_tensor(targets.data(), {batch, seq_len}, DType::I32);

  float first_loss = 0, last_loss = 0;
  for (int step = 0; step < 50; ++step) {
    model.weights().zero_grads();
    last_loss = model.forward_backward(input_tensor, target_tensor, 1.0f);
    if (step == 0) first_loss = last_loss;
    const double norm = global_grad_norm(model.weights(), model.weights().grads(), nullptr);
    ASSERT_TRUE(std::isfinite(norm)) << "step " << step;
    optimizer.step(model.weights().params(), model.weights().grads(), 1e-2f, clip_scale(norm, 1.0));
  }
  // A fresh model is close to uniform over the vocabulary (a little above ln V: with tied weights the
  // input token's own embedding, still in the residual, lifts its logit); 64 random targets can be
  // memorised.
  EXPECT_GT(first_loss, std::log(double(config.vocab_size)));
  EXPECT_LT(first_loss, std::log(double(config.vocab_size)) + 1.0);
  EXPECT_LT(last_loss, 0.25 * first_loss) << "loss went from " << first_loss << " to " << last_loss;
  // Evaluation agrees with the training forward pass on the same weights.
  model.weights().zero_grads();
  const float train_loss = model.forward_backward(input_tensor, target_tensor, 1.0f);
  EXPECT_NEAR(model.forward_loss(input_tensor, target_tensor), train_loss, 1e-6 * train_loss);
}

}  // namespace

TEST(Training, T6LearnsAFixedBatch) { expect_learns_fixed_batch(ModelKind::T6); }
TEST(Training, KvOnlyLearnsAFixedBatch) { expect_learns_fixed_batch(ModelKind::T6_kvonly); }
TEST(Training, MhaLearnsAFixedBatch) { expect_learns_fixed_batch(ModelKind::llama_mha); }
TEST(Training, GqaLearnsAFixedBatch) { expect_learns_fixed_batch(ModelKind::llama_gqa); }
TEST(Training, MlaLearnsAFixedBatch) { expect_learns_fixed_batch(ModelKind::llama_mla); }
