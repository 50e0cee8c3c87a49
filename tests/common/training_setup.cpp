#include "common/training_setup.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "core/error.h"
#include "data/corpus_writer.h"
#include "data/preprocess.h"

namespace t6::testing {

std::string write_shakespeare_corpus(const std::string& directory, uint64_t shard_tokens) {
  PreprocessOptions options;
  options.inputs = {(source_dir() / "data_tools/corpora/tinyshakespeare.jsonl").string()};
  options.output_dir = directory;
  options.val_fraction = 0.1;
  options.shard_tokens = shard_tokens;
  options.overwrite = true;
  run_preprocess(options);
  return directory;
}

std::string write_shakespeare_characters(const std::string& directory) {
  const std::string source = (source_dir() / "data_tools/corpora/tinyshakespeare.jsonl").string();
  std::filesystem::create_directories(directory);
  constexpr uint32_t kEot = 0;
  CorpusWriter writer(directory, {"characters", "", "unknown", kCharacterVocab, kEot}, 100'000, 0);
  std::ifstream lines(source);
  std::string line;
  std::vector<uint32_t> ids;
  for (uint64_t document = 0; std::getline(lines, line); ++document) {
    const std::string text = nlohmann::json::parse(line).at("text").get<std::string>();
    ids.assign({kEot});
    for (unsigned char byte : text) {
      T6_CHECK(byte != kEot && byte < kCharacterVocab, source, ": document ", document, " holds byte ", int(byte),
               ", outside the character vocab");
      ids.push_back(byte);
    }
    writer.begin_document(source, document_goes_to_val(document, 0.1, 0));
    writer.append(ids.data(), ids.size());
  }
  writer.check_splits(source, true);
  writer.finish({source});
  return directory;
}

ModelConfig fixture_model_config(ModelKind kind) {
  ModelConfig config{kind, 2, 64, 6, 16, 6, 2, 1, 128};
  if (kind == ModelKind::T6_kvonly) config.n_head = 5;
  if (kind == ModelKind::llama_mha) config.n_head = 4;
  if (kind == ModelKind::llama_gqa) config.group_size = 3;
  if (kind == ModelKind::llama_mla) {
    config.n_head = 4;
    config.qk_rope_head_dim = 8;
    config.q_lora_rank = 24;
    config.kv_lora_rank = 16;
    config.v_head_dim = 16;
  }
  config.validate();
  return config;
}

RunConfig tiny_run_config(ModelKind kind, const std::string& corpus) {
  RunConfig config;
  config.model = {kind, 2, 64, 6, 16, 6, 2, kind == ModelKind::llama_gqa ? 3 : 1, 50304};
  if (kind == ModelKind::llama_mha) config.model.n_embd = 96;  // MHA's head_dim is n_embd / n_head = 16
  if (kind == ModelKind::llama_mla) {
    // Value heads narrower than the query/key heads (Dn + Dr = 24), as the layer allows.
    config.model.qk_rope_head_dim = 8;
    config.model.q_lora_rank = 24;
    config.model.kv_lora_rank = 16;
    config.model.v_head_dim = 12;
  }
  config.train.seed = 7;
  config.train.seq_len = 16;
  config.train.micro_batch_size = 1;
  config.train.global_batch_size = 8;
  config.train.max_steps = 5;
  config.train.lr = 3e-3;
  config.train.min_lr = 3e-4;
  config.train.warmup_steps = 1;
  config.data.path = corpus;
  config.parallel.threads = 1;
  config.checkpoint.keep = 0;
  config.validate();
  return config;
}

}  // namespace t6::testing
