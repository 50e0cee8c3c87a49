// ctest-labels: infer
// ctest-mpi-ranks: 1
// Perplexity (src/infer/perplexity.h) equals the trainer's own evaluation: a tiny run logs its
// validation loss at its last step, and the mean loss over the same windows (eval.batches global
// batches) of its final checkpoint, loaded for inference and evaluated in batches of another size,
// is that loss; perplexity is exp of it.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/mpi_environment.h"
#include "common/mpi_training.h"
#include "common/training_setup.h"
#include "infer/model_source.h"
#include "infer/perplexity.h"
#include "run/trainer.h"

T6_MPI_TEST_ENVIRONMENT();

namespace t6::infer {
namespace {

double last_val_loss(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  double loss = NAN;
  for (std::string line; std::getline(in, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.contains("val_loss")) loss = record["val_loss"].get<double>();
  }
  return loss;
}

TEST(Perplexity, EqualsTheTrainersEvaluation) {
  RunConfig config = testing::tiny_run_config(ModelKind::T6, testing::shared_corpus());
  config.train.max_steps = 3;
  config.eval.interval = 3;
  config.eval.batches = 2;
  const std::string run_dir = testing::shared_run_dir("perplexity");
  {
    ProcessGrid grid(testing::communicator_of(MPI_COMM_SELF), 1, 0);
    Trainer trainer(config, grid, run_dir);
    trainer.run();
  }
  const double trainer_loss = last_val_loss(run_dir);
  ASSERT_TRUE(std::isfinite(trainer_loss));

  const ModelSource source = open_model_source(run_dir);
  EXPECT_EQ(source.seq_len, config.train.seq_len);
  const int64_t windows = config.eval.batches * config.train.global_batch_size;  // 16
  EXPECT_EQ(perplexity_batch(windows, 5), 4);
  LanguageModel model(source.config, perplexity_batch(windows, 5), source.seq_len, nullptr, 1, false);
  load_model_weights(source, model.weights());
  TokenLoader loader(config.data.path, config.train.seq_len, 0);
  const PerplexityResult result = evaluate_perplexity(model, loader, windows);
  EXPECT_NEAR(result.mean_loss, trainer_loss, 1e-6 * trainer_loss);
  EXPECT_DOUBLE_EQ(result.perplexity, std::exp(result.mean_loss));
  EXPECT_EQ(result.tokens, windows * config.train.seq_len);
}

}  // namespace
}  // namespace t6::infer
