// t6_preprocess as a library call: inputs → tokens → train/val shards + index.json. The inputs are
// text (`inputs`), or token files of llm.c or nanoGPT (`token_inputs`, see token_files.h), which are
// converted without re-tokenising.
//
// Documents are read in input order; each becomes EOT followed by its tokens. The split is by whole
// documents and deterministic: with val_fraction F, document i goes to val when ceil((i+1)·F) >
// ceil(i·F) (evenly spread, ⌈N·F⌉ of N, the first one included, so val is never empty); with
// val_documents V, the first V documents go to val. Tokenising runs on `threads` threads over
// batches whose boundaries depend only on the input, and shards are written in document order, so
// the output is byte-identical for any thread count. The corpus is written into a staging directory
// and moved into place whole (corpus_staging.h): on any error, a full disk included, the output
// directory is as it was (absent, or the old corpus with `overwrite`) and nothing is left behind.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace t6 {

struct PreprocessOptions {
  std::vector<std::string> inputs;        // text files or directories
  std::vector<std::string> token_inputs;  // token files or directories, instead of text
  std::string tokens_format = "llmc";     // of token_inputs: "llmc" or "raw-u16"
  std::string output_dir;
  double val_fraction = 0.0;
  int64_t val_documents = 0;
  int64_t threads = 1;
  uint64_t shard_tokens = 100'000'000;
  std::string jsonl_field = "text";
  bool overwrite = false;
  std::string tokenizer_path;  // resolved as resolve_tokenizer_path does
  int gzip_level = 0;          // 0: shards uncompressed
  bool progress_bar = false;   // draw on stderr
};

struct PreprocessSummary {
  uint64_t input_files = 0;
  uint64_t input_bytes = 0;  // document text, after decompression; for token files, the bytes read
  uint64_t documents = 0;
  uint64_t train_documents = 0, val_documents = 0;
  uint64_t train_tokens = 0, val_tokens = 0;  // EOTs included
  uint64_t shards = 0;
  double seconds = 0.0;
};

PreprocessSummary run_preprocess(const PreprocessOptions& options);

}  // namespace t6
