// t6_preprocess: turns raw text (.txt, .jsonl, optionally .gz/.zst), or the token files of llm.c or
// nanoGPT (--tokens), into HDF5 token shards plus index.json (see src/data/preprocess.h), or with
// --verify checks a corpus end to end.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>

#include "core/cpu_threads.h"
#include "core/error.h"
#include "data/corpus_verify.h"
#include "data/preprocess.h"

namespace {

int preprocess(t6::PreprocessOptions options) {
  options.progress_bar = isatty(fileno(stderr)) != 0;
  const t6::PreprocessSummary summary = t6::run_preprocess(options);
  const double seconds = summary.seconds > 0 ? summary.seconds : 1e-9;
  std::printf(
      "t6_preprocess: %llu files, %llu documents (%llu train, %llu val), %llu tokens (%llu train, %llu val) "
      "in %llu shards under %s; %.2f MB of %s in %.2f s (%.1f MB/s, %.2fM tokens/s, %d threads)\n",
      static_cast<unsigned long long>(summary.input_files), static_cast<unsigned long long>(summary.documents),
      static_cast<unsigned long long>(summary.train_documents), static_cast<unsigned long long>(summary.val_documents),
      static_cast<unsigned long long>(summary.train_tokens + summary.val_tokens),
      static_cast<unsigned long long>(summary.train_tokens), static_cast<unsigned long long>(summary.val_tokens),
      static_cast<unsigned long long>(summary.shards), options.output_dir.c_str(), double(summary.input_bytes) / 1e6,
      options.token_inputs.empty() ? "text" : "token files", seconds, double(summary.input_bytes) / 1e6 / seconds,
      double(summary.train_tokens + summary.val_tokens) / 1e6 / seconds, int(options.threads));
  return 0;
}

int verify(const std::string& directory) {
  const t6::CorpusVerification result = t6::verify_corpus(directory);
  std::printf("t6_preprocess: %s verified: %lld shards, %llu tokens, %llu documents, all checksums match\n",
              directory.c_str(), static_cast<long long>(result.shards),
              static_cast<unsigned long long>(result.tokens), static_cast<unsigned long long>(result.documents));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"t6_preprocess: tokenize text corpora (GPT-2 BPE, r50k_base) into HDF5 token shards"};
  t6::PreprocessOptions options;
  options.threads = t6::available_cores();
  std::string verify_dir;
  app.add_option("--input", options.inputs,
                 ".txt (one document per file) or .jsonl (one per line) files, optionally .gz/.zst; directories "
                 "are searched recursively");
  auto* tokens = app.add_option("--tokens", options.token_inputs,
                                "token files instead of text, converted without re-tokenising: llm.c .bin shards "
                                "(fineweb_val_000000.bin, fineweb_train_000001.bin, ...) or nanoGPT's raw uint16 "
                                "train.bin/val.bin; directories are searched for .bin files. Documents start at "
                                "each EOT; without --val-fraction/--val-docs, files named *_val_* or val.bin form "
                                "the val split");
  app.add_option("--tokens-format", options.tokens_format, "format of the --tokens files: llmc (default) or raw-u16");
  app.add_option("--output", options.output_dir, "corpus directory to create (shards + index.json)");
  auto* val_fraction = app.add_option("--val-fraction", options.val_fraction,
                                      "fraction of documents for the val split, spread evenly (default 0)");
  auto* val_docs = app.add_option("--val-docs", options.val_documents, "the first N documents form the val split");
  val_fraction->excludes(val_docs);
  tokens->excludes("--input");
  app.add_option("--threads", options.threads, "tokenizer threads (output is identical for any count)");
  app.add_option("--shard-tokens", options.shard_tokens, "tokens per shard file (default 100000000)");
  app.add_option("--jsonl-field", options.jsonl_field, "the .jsonl field holding the text (default text)");
  app.add_flag("--overwrite", options.overwrite, "replace an existing corpus directory, once the new corpus is complete (a failed run leaves it as it was)");
  app.add_option("--tokenizer", options.tokenizer_path,
                 "r50k_base.tiktoken file (default: $T6_TOKENIZER, then data_tools/cache/r50k_base.tiktoken)");
  app.add_option("--gzip-level", options.gzip_level, "compress shards with gzip at this level (default 0: none)");
  app.add_option("--verify", verify_dir, "check an existing corpus directory end to end (every checksum), then exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  try {
    if (!verify_dir.empty()) return verify(verify_dir);
    T6_CHECK(!options.inputs.empty() || !options.token_inputs.empty(), "no inputs given (--input PATH... or --tokens PATH...)");
    T6_CHECK(!options.output_dir.empty(), "no output directory given (--output DIR)");
    return preprocess(options);
  } catch (const std::bad_alloc&) {
    // Each shard is built in memory before it is written: its size is what asks the most.
    std::fprintf(stderr, "t6_preprocess: error: out of host memory (std::bad_alloc) writing %s: each shard is built "
                 "in memory before it is written; lower --shard-tokens (now %lld)\n",
                 options.output_dir.c_str(), static_cast<long long>(options.shard_tokens));
    return 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "t6_preprocess: error: %s\n", error.what());
    return 1;
  }
}
