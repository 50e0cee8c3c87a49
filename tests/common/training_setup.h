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

// The same documents as characters: one token per byte (the text is ASCII), vocab kCharacterVocab
// with EOT 0, which no text byte is; 10% of documents for validation, shards of 100,000 tokens.
// About 1.2M tokens. A model over it has a 128-row embedding instead of 50304, so a step of a tiny
// model is its layers' work, not the embedding's and the LM head's (what emulated GPU tests need).
inline constexpr int64_t kCharacterVocab = 128;
std::string write_shakespeare_characters(const std::string& directory);

// The model of `kind` in the fixtures (tests/fixtures/README.md): L 2, d 64, D 16, V 128; T6 H 6,
// Rq 6, R 2; KVonly H 5, R 2; MHA H 4; GQA H 6 in groups of 3 (2 KV heads); MLA H 4, Dr 8, Cq 24,
// Ckv 16, Dv 16.
ModelConfig fixture_model_config(ModelKind kind);

// A tiny model of `kind` (L 2, d 64, 6 heads of 16, so 4 TP ranks split heads 2, 2, 1, 1) on
// `corpus`, 16-token sequences, global batch 8 of micro-batches of 1, no evaluation, no checkpoints.
// MLA: Dr 8, Cq 24, Ckv 16 and value heads of 12.
RunConfig tiny_run_config(ModelKind kind, const std::string& corpus);

}  // namespace t6::testing
