// Shared set-up for tests that train: a token corpus preprocessed from the bundled Shakespeare
// JSONL, and small run configs of every model kind that train in a second.
#pragma once
#include <cstdint>
#include <string>

#include "train/run_config.h"

namespace t6::testing {

// Preprocesses data_tools/corpora/tinyshakespeare.jsonl (about 300k tokens) into `directory` (10%
// of documents for validation, small shards so windows cross shard boundaries) and returns the
// directory.
std::string write_shakespeare_corpus(const std::string& directory, uint64_t shard_tokens = 100'000);

// The model of `kind` in the fixtures (tests/fixtures/README.md): L 2, d 64, D 16, V 128; T6 H 6,
// Rq 6, R 2; KVonly H 5, R 2; MHA H 4; GQA H 6 in groups of 3 (2 KV heads); MLA H 4, Dr 8, Cq 24,
// Ckv 16, Dv 16.
ModelConfig fixture_model_config(ModelKind kind);

// A tiny model of `kind` (L 2, d 64, 6 heads of 16, so 4 TP ranks split heads 2, 2, 1, 1) on
// `corpus`, 16-token sequences, global batch 8 of micro-batches of 1, no evaluation, no checkpoints.
// MLA: Dr 8, Cq 24, Ckv 16 and value heads of 12.
RunConfig tiny_run_config(ModelKind kind, const std::string& corpus);

}  // namespace t6::testing
