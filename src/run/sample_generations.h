// Sample generations during training (log.sample_interval > 0, as nanoGPT and llm.c print them):
// every log.sample_interval steps the current weights continue EOT + log.sample_prompt by
// log.sample_tokens tokens, greedily at log.sample_temperature = 0, else sampled with train.seed
// (the same stream at every step, so samples differ only by the weights). The trainer writes the
// text to the console log and a metrics.jsonl record.
//
// Who decodes: infer::Decoder runs a whole model in one process (tp = 1), and world rank 0 (TP rank
// 0 of DP replica 0) decodes. With TP = 1 it reads its own weights in place: the live ones on the
// CPU backend, the checkpoint staging copy (after CheckpointStaging::download) on the CUDA backend.
// With TP > 1 the TP group of DP replica 0 first gathers the full weights onto rank 0, one
// parameter at a time, into a whole-model fp32 copy that rank 0 keeps for the run (the other ranks
// of that group keep a buffer of the largest split parameter). A TP-split decoder would need TP
// collectives in every decode step; gathering keeps the one decoder and costs one parameter copy.
//
// Samples never change training: the weights are only read, the decoder has its own cache and
// buffers, and no random stream of the training is touched. When log.sample_interval = 0 the
// trainer builds none of this.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "infer/decoder.h"
#include "infer/generation.h"
#include "model/model_weights.h"
#include "parallel/process_grid.h"
#include "train/run_config.h"

namespace t6 {

struct Sample {
  std::string text;             // the continuation (an EOT that ended it left out)
  std::vector<int32_t> tokens;  // the continuation's ids, a final EOT included
};

class SampleGenerations {
 public:
  // Collective over the world. `weights` are this rank's host weights, kept by reference and read
  // at each generate(). Rank 0 loads the tokenizer ($T6_TOKENIZER, else data_tools/cache) and
  // plans its decoder; a failure there (a missing tokenizer file) stops every rank with rank 0's
  // message.
  SampleGenerations(const RunConfig& config, ProcessGrid& grid, const ModelWeights& weights);
  ~SampleGenerations();

  bool due(int64_t step) const { return step % settings_.sample_interval == 0; }
  // Whether this rank's weights are read by generate() (the CUDA backend downloads them first).
  bool reads_weights() const { return grid_.dp_rank() == 0; }
  // Collective over the world: the sample on rank 0, nothing elsewhere. The other ranks wait here
  // for rank 0's decoding (not in the next step, whose communication time would count it).
  std::optional<Sample> generate();
  // For the start-up table: "every 20 steps, 64 tokens greedy after "ROMEO:", on rank 0 (…)".
  std::string describe() const;

 private:
  void prepare_decoder(const RunConfig& config);
  void gather_weights();  // TP > 1, DP replica 0: the full weights onto TP rank 0
  Sample decode();

  LogConfig settings_;
  ProcessGrid& grid_;
  const ModelWeights& weights_;
  std::vector<float> gather_buffer_;           // TP ranks but 0 of DP replica 0: their share's sum
  std::unique_ptr<ModelWeights> full_weights_;  // rank 0 with TP > 1
  std::unique_ptr<Tokenizer> tokenizer_;        // rank 0
  std::unique_ptr<infer::Decoder> decoder_;     // rank 0
  std::vector<int32_t> prompt_;                 // EOT + the prompt's ids
  infer::GenerationOptions generation_;
};

}  // namespace t6
