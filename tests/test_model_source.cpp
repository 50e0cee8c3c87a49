// ctest-labels: infer
// Loading a model for generation and evaluation (src/infer/model_source.h): a fixture safetensors
// file, the step-0 checkpoint imported from it, and that checkpoint resharded to TP 2 × DP 2 with
// ZeRO-1 all give exactly the fixture's weights in one process, by step directory, checkpoints
// directory or run directory; missing and damaged sources are one clear error naming the path.
#include <gtest/gtest.h>

#include <filesystem>

#include "train_state/model_export.h"
#include "train_state/reshard.h"
#include "checkpoint/safetensors.h"
#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "infer/model_source.h"

namespace t6::infer {
namespace {

namespace fs = std::filesystem;

std::vector<float> load(const std::string& path, ModelConfig* config = nullptr) {
  const ModelSource source = open_model_source(path);
  ModelWeights weights(source.config, 0, 1, 1, false);
  EXPECT_FALSE(weights.has_gradients());
  load_model_weights(source, weights);
  if (config) *config = source.config;
  const float* data = weights.params().data<float>();
  return {data, data + weights.params().numel()};
}

TEST(ModelSource, EveryFormAndLayoutGivesTheFixturesWeights) {
  const std::string fixture = (testing::fixture_dir() / "t6_tiny.safetensors").string();
  ModelConfig config;
  const std::vector<float> expected = load(fixture, &config);
  EXPECT_EQ(config.kind, ModelKind::T6);
  const SafetensorsReader file(fixture);
  EXPECT_EQ(file.read_f32("param.transformer.h.1.attn.c_qkv.W_B_k.weight"),
            std::vector<float>(expected.begin() + ModelWeights(config, 0, 1).table()
                                                      .find("transformer.h.1.attn.c_qkv.W_B_k.weight").flat_offset,
                               expected.begin() + ModelWeights(config, 0, 1).table()
                                                      .find("transformer.h.1.attn.c_qkv.W_B_k.weight").flat_offset +
                                   file.entry("param.transformer.h.1.attn.c_qkv.W_B_k.weight").numel()));

  const fs::path run = testing::scratch_dir("model_source");
  const fs::path imported = checkpoint::import_safetensors(fixture, run / "imported" / "checkpoints", nullptr);
  EXPECT_EQ(load(imported.string()), expected);
  EXPECT_EQ(load((run / "imported" / "checkpoints").string()), expected);
  EXPECT_EQ(load((run / "imported").string()), expected);  // a run directory

  const auto source = checkpoint::open_checkpoint_path(imported, checkpoint::ChecksumCheck::verify);
  const fs::path resharded = checkpoint::reshard_checkpoint(source, run / "tp2" / "checkpoints", {2, 2, true});
  EXPECT_EQ(load(resharded.string()), expected);
}

TEST(ModelSource, MissingAndDamagedSourcesNameThePath) {
  testing::expect_mentions(testing::error_of([] { open_model_source("/nonexistent/model"); }),
                           {"/nonexistent/model", "no such file"});
  const fs::path dir = testing::scratch_dir("model_source_bad");
  const fs::path empty = dir / "empty";
  fs::create_directories(empty);
  testing::expect_mentions(testing::error_of([&] { open_model_source(empty.string()); }), {empty.string()});
  const fs::path garbage = dir / "garbage.safetensors";
  std::FILE* out = std::fopen(garbage.c_str(), "wb");
  std::fputs("not a safetensors file", out);
  std::fclose(out);
  testing::expect_mentions(testing::error_of([&] { open_model_source(garbage.string()); }), {garbage.string()});

  const fs::path imported = checkpoint::import_safetensors((testing::fixture_dir() / "mha_tiny.safetensors").string(),
                                                           dir / "checkpoints", nullptr);
  const fs::path shard = imported / "shard_tp0_dp0.h5";
  fs::resize_file(shard, fs::file_size(shard) / 2);
  testing::expect_mentions(testing::error_of([&] { open_model_source((dir / "checkpoints").string()); }),
                           {"shard_tp0_dp0.h5"});
}

}  // namespace
}  // namespace t6::infer
