#include "data/preprocess.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <filesystem>

#include "core/cpu_threads.h"
#include "core/error.h"
#include "core/progress_bar.h"
#include "data/corpus_index.h"
#include "data/corpus_inputs.h"
#include "data/corpus_staging.h"
#include "data/corpus_writer.h"
#include "data/token_files.h"
#include "data/tokenizer.h"
#include "data/unicode_classes.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;

// Batch boundaries come from the input alone (never the thread count), which keeps output identical.
constexpr size_t kBatchBytes = size_t(1) << 20;

struct TokenizedBatch {
  std::vector<RawDocument> documents;
  std::vector<uint32_t> ids;              // all documents' tokens, EOTs not included
  std::vector<size_t> document_ends;      // end of each document's tokens in `ids`
  uint64_t text_bytes = 0;
  std::exception_ptr error;
};

void check_options(const PreprocessOptions& options) {
  T6_CHECK(options.inputs.empty() || options.token_inputs.empty(), "give --input (text) or --tokens, not both");
  T6_CHECK(!options.inputs.empty() || !options.token_inputs.empty(), "no inputs given (--input PATH... or --tokens PATH...)");
  T6_CHECK(!options.output_dir.empty(), "no output directory given (--output DIR)");
  T6_CHECK(options.val_fraction >= 0.0 && options.val_fraction < 1.0, "--val-fraction must be in [0, 1), got ",
           options.val_fraction);
  T6_CHECK(options.val_documents >= 0, "--val-docs must be ≥ 0, got ", options.val_documents);
  T6_CHECK(options.val_fraction == 0.0 || options.val_documents == 0, "give --val-fraction or --val-docs, not both");
  check_cpu_threads(options.threads, "--threads");
  T6_CHECK(options.shard_tokens >= 1, "--shard-tokens must be ≥ 1");
  T6_CHECK(options.gzip_level >= 0 && options.gzip_level <= 9, "--gzip-level must be in [0, 9], got ",
           options.gzip_level);
}

void tokenize_batch(TokenizedBatch& batch, const Tokenizer& tokenizer, BpeCache& cache,
                    const std::vector<InputFile>& files, const std::string& jsonl_field) {
  try {
    for (const RawDocument& document : batch.documents) {
      const InputFile& file = files[document.file];
      if (file.format == InputFormat::kJsonl) {
        const std::string text = jsonl_document_text(document.bytes, jsonl_field, file.path, document.line);
        batch.text_bytes += text.size();
        tokenizer.encode(text, cache, batch.ids);
      } else {
        batch.text_bytes += document.bytes.size();
        tokenizer.encode(document.bytes, cache, batch.ids);
      }
      batch.document_ends.push_back(batch.ids.size());
    }
  } catch (...) {
    batch.error = std::current_exception();
  }
}

// Hands a batch's documents to the writer in order, each EOT first, split by document number.
void write_batch(const TokenizedBatch& batch, const std::vector<InputFile>& files, const PreprocessOptions& options,
                 uint32_t eot, CorpusWriter& writer) {
  size_t begin = 0;
  for (size_t i = 0; i < batch.documents.size(); ++i) {
    const uint64_t number = writer.train().documents + writer.val().documents;
    writer.begin_document(files[batch.documents[i].file].path,
                          document_goes_to_val(number, options.val_fraction, options.val_documents));
    writer.append(&eot, 1);
    const size_t end = batch.document_ends[i];
    writer.append(batch.ids.data() + begin, end - begin);
    begin = end;
  }
}

std::string describe_inputs(const std::vector<std::string>& inputs) {
  std::string described;
  for (const auto& input : inputs) described += (described.empty() ? "" : ", ") + input;
  return described;
}

PreprocessSummary tokenize_corpus(const PreprocessOptions& options, const Tokenizer& tokenizer,
                                  const std::vector<InputFile>& files, CorpusWriter& writer, ProgressBar& progress) {
  PreprocessSummary summary;
  summary.input_files = files.size();

  RawDocumentReader reader(files);
  std::vector<BpeCache> caches(size_t(options.threads));
  const size_t batches_per_round = size_t(options.threads) * 4;
  bool inputs_left = true;
  while (inputs_left) {
    std::vector<TokenizedBatch> round;
    while (round.size() < batches_per_round) {
      TokenizedBatch batch;
      if (!reader.next_batch(batch.documents, kBatchBytes)) {
        inputs_left = false;
        break;
      }
      round.push_back(std::move(batch));
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(int(options.threads))
    for (size_t i = 0; i < round.size(); ++i)
      tokenize_batch(round[i], tokenizer, caches[size_t(omp_get_thread_num())], files, options.jsonl_field);
    // In order, so the first bad document is reported whatever the thread count.
    for (TokenizedBatch& batch : round) {
      if (batch.error) std::rethrow_exception(batch.error);
      write_batch(batch, files, options, tokenizer.eot_id(), writer);
      summary.input_bytes += batch.text_bytes;
    }
    progress.update(reader.file_bytes_read(), writer.train().tokens + writer.val().tokens);
  }
  const std::string inputs = describe_inputs(options.inputs);
  T6_CHECK(writer.train().documents + writer.val().documents > 0 && summary.input_bytes > 0, inputs,
           ": empty corpus (no document holds any text)");
  return summary;
}

PreprocessSummary import_corpus(const PreprocessOptions& options, const CorpusIdentity& identity,
                                const std::vector<TokenFile>& files, CorpusWriter& writer, ProgressBar& progress) {
  PreprocessSummary summary;
  summary.input_files = files.size();
  summary.input_bytes = import_token_files(files, TokenSplitRule{options.val_fraction, options.val_documents}, writer,
                                           identity, progress);
  T6_CHECK(writer.train().documents + writer.val().documents > 0, describe_inputs(options.token_inputs),
           ": empty corpus (the token files hold no tokens)");
  return summary;
}

}  // namespace

PreprocessSummary run_preprocess(const PreprocessOptions& options) {
  check_options(options);
  const Tokenizer tokenizer = Tokenizer::load(resolve_tokenizer_path(options.tokenizer_path));
  const bool importing = !options.token_inputs.empty();
  // Every input is listed and checked before the output directory is touched.
  const std::vector<InputFile> files = importing ? std::vector<InputFile>{} : list_input_files(options.inputs);
  const std::vector<TokenFile> token_files =
      importing ? list_token_files(options.token_inputs, parse_token_file_format(options.tokens_format))
                : std::vector<TokenFile>{};
  // Imported tokens were split by whatever pre-tokeniser made them; its Unicode version is unknown.
  const CorpusIdentity identity{tokenizer.name(), kTokenizerSha256,
                                importing ? "unknown" : std::string(unicode_version()), tokenizer.vocab_size(),
                                tokenizer.eot_id()};
  uint64_t total_file_bytes = 0;
  std::vector<std::string> sources;
  auto add_source = [&](const auto& file) {
    total_file_bytes += file.file_bytes;
    sources.push_back(file.path);
  };
  std::for_each(files.begin(), files.end(), add_source);
  std::for_each(token_files.begin(), token_files.end(), add_source);
  CorpusStaging staging(options.output_dir, options.overwrite);

  CorpusWriter writer(staging.directory().string(), identity, options.shard_tokens, options.gzip_level);
  ProgressBar progress(stderr, total_file_bytes, options.progress_bar);
  PreprocessSummary summary = importing ? import_corpus(options, identity, token_files, writer, progress)
                                        : tokenize_corpus(options, tokenizer, files, writer, progress);
  progress.finish();
  writer.check_splits(describe_inputs(importing ? options.token_inputs : options.inputs),
                      options.val_fraction > 0 || options.val_documents > 0);
  summary.train_documents = writer.train().documents;
  summary.val_documents = writer.val().documents;
  summary.documents = summary.train_documents + summary.val_documents;
  summary.train_tokens = writer.train().tokens;
  summary.val_tokens = writer.val().tokens;
  summary.shards = writer.finish(sources);
  staging.commit();
  summary.seconds = progress.elapsed_seconds();
  return summary;
}

}  // namespace t6
