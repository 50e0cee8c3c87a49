#include "run/sample_generations.h"

#include <algorithm>
#include <exception>

#include "core/error.h"
#include "infer/byte_size.h"
#include "parallel/rank_failure.h"

namespace t6 {

using infer::format_bytes;

SampleGenerations::SampleGenerations(const RunConfig& config, ProcessGrid& grid, const ModelWeights& weights)
    : settings_(config.log), grid_(grid), weights_(weights) {
  T6_CHECK(settings_.sample_interval > 0, "internal error: sample generations built with log.sample_interval = 0");
  std::string failure;
  try {
    if (grid.world_rank() == 0) prepare_decoder(config);
    if (grid.tp_size() > 1 && grid.dp_rank() == 0 && grid.tp_rank() != 0) {
      int64_t largest_split = 0;
      for (const LocalParam& entry : weights.table().params())
        if (entry.spec.rule.kind == ShardRule::Kind::Split)
          largest_split = std::max(largest_split, entry.spec.global_shape.numel());
      gather_buffer_.resize(size_t(largest_split));
    }
  } catch (const std::exception& error) {
    failure = str("log.sample_interval = ", settings_.sample_interval, ": ", error.what());
  }
  throw_if_any_rank_failed(grid.world(), failure);
}

SampleGenerations::~SampleGenerations() = default;

void SampleGenerations::prepare_decoder(const RunConfig& config) {
  tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(resolve_tokenizer_path("")));
  T6_CHECK(config.model.vocab_size >= tokenizer_->vocab_size(), "model.vocab_size (", config.model.vocab_size,
           ") is smaller than the tokenizer's ", tokenizer_->vocab_size(), " tokens");
  generation_.max_new_tokens = settings_.sample_tokens;
  generation_.sampling.temperature = settings_.sample_temperature;
  generation_.seed = config.train.seed;
  generation_.vocab_limit = tokenizer_->vocab_size();
  generation_.eot = int32_t(tokenizer_->eot_id());
  prompt_ = {generation_.eot};  // every training document starts with EOT
  for (uint32_t id : tokenizer_->encode(settings_.sample_prompt)) prompt_.push_back(int32_t(id));
  if (grid_.tp_size() > 1) full_weights_ = std::make_unique<ModelWeights>(config.model, 0, 1, 1, false);
  decoder_ = std::make_unique<infer::Decoder>(full_weights_ ? *full_weights_ : weights_, 1,
                                              infer::positions_needed(int64_t(prompt_.size()), settings_.sample_tokens));
}

std::string SampleGenerations::describe() const {
  if (!decoder_) return "";
  const std::string how = settings_.sample_temperature == 0
                              ? std::string("greedy")
                              : str("at temperature ", settings_.sample_temperature, " (seed train.seed)");
  const std::string weights =
      full_weights_ ? str(", whole model's weights gathered over TP ", format_bytes(full_weights_->param_bytes())) : "";
  return str("every ", settings_.sample_interval, " steps, ", settings_.sample_tokens, " tokens ", how, " after EOT",
             settings_.sample_prompt.empty() ? std::string() : str(" + \"", settings_.sample_prompt, "\""),
             ", on rank 0 (cache ", format_bytes(decoder_->cache().bytes()), ", buffers ",
             format_bytes(decoder_->buffer_bytes()), weights, ")");
}

// Each rank writes its slice into zeros and the sum over the TP group lays the slices side by
// side: every element is one rank's value plus zeros, so the sum is exact.
void SampleGenerations::gather_weights() {
  Communicator& tp = grid_.tp();
  const bool root = tp.rank() == 0;
  for (const LocalParam& entry : weights_.table().params()) {
    const float* local = weights_.param(entry).data<float>();
    if (entry.spec.rule.kind == ShardRule::Kind::Replicated) {
      if (root) std::copy_n(local, entry.numel(), full_weights_->param(entry.spec.name).data<float>());
      continue;
    }
    const int64_t count = entry.spec.global_shape.numel();
    float* full = root ? full_weights_->param(entry.spec.name).data<float>() : gather_buffer_.data();
    std::fill_n(full, count, 0.0f);
    place_local_slice(entry, local, full);
    tp.all_reduce(Tensor(full, {count}, DType::F32), ReduceOp::Sum);
  }
}

Sample SampleGenerations::decode() {
  infer::GenerationStats stats;
  const infer::Generated generated = infer::generate(*decoder_, {prompt_}, generation_, 0, nullptr, stats)[0];
  std::vector<uint32_t> ids(generated.tokens.begin(), generated.tokens.end());
  if (!ids.empty() && ids.back() == uint32_t(generation_.eot)) ids.pop_back();
  return {tokenizer_->decode(ids), generated.tokens};
}

std::optional<Sample> SampleGenerations::generate() {
  std::optional<Sample> sample;
  std::string failure;
  if (grid_.tp_size() > 1 && grid_.dp_rank() == 0) gather_weights();
  try {
    if (decoder_) sample = decode();
  } catch (const std::exception& error) {
    failure = str("sample generation: ", error.what());
  }
  throw_if_any_rank_failed(grid_.world(), failure);  // also where the other ranks wait for rank 0
  return sample;
}

}  // namespace t6
