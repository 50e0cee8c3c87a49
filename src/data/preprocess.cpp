#include "data/preprocess.h"

#include <omp.h>

#include <cmath>
#include <exception>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "data/corpus_index.h"
#include "data/corpus_inputs.h"
#include "core/progress_bar.h"
#include "data/shard_format.h"
#include "data/sha256.h"
#include "data/shard_writer.h"
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
  T6_CHECK(!options.output_dir.empty(), "no output directory given (--output DIR)");
  T6_CHECK(options.val_fraction >= 0.0 && options.val_fraction < 1.0, "--val-fraction must be in [0, 1), got ",
           options.val_fraction);
  T6_CHECK(options.val_documents >= 0, "--val-docs must be ≥ 0, got ", options.val_documents);
  T6_CHECK(options.val_fraction == 0.0 || options.val_documents == 0, "give --val-fraction or --val-docs, not both");
  T6_CHECK(options.threads >= 1, "--threads must be ≥ 1, got ", options.threads);
  T6_CHECK(options.shard_tokens >= 1, "--shard-tokens must be ≥ 1");
  T6_CHECK(options.gzip_level >= 0 && options.gzip_level <= 9, "--gzip-level must be in [0, 9], got ",
           options.gzip_level);
}

// Clears the way for a new corpus. The old index goes first, so an interrupted overwrite never
// leaves a directory that looks complete.
void prepare_output_dir(const PreprocessOptions& options) {
  const fs::path directory = options.output_dir;
  std::error_code error;
  if (fs::exists(directory, error)) {
    T6_CHECK(options.overwrite, directory.string(), ": output directory exists (pass --overwrite to replace it)");
    T6_CHECK(fs::is_directory(directory), directory.string(), ": exists and is not a directory");
    fs::remove(directory / kCorpusIndexFile, error);
    T6_CHECK(!error, (directory / kCorpusIndexFile).string(), ": cannot remove (", error.message(), ")");
    for (const auto& entry : fs::directory_iterator(directory)) {
      const std::string name = entry.path().filename().string();
      const bool is_shard = (name.rfind("train_", 0) == 0 || name.rfind("val_", 0) == 0) && name.ends_with(".h5");
      if (is_shard || name == std::string(kCorpusIndexFile) + ".tmp") fs::remove(entry.path());
    }
  } else {
    fs::create_directories(directory, error);
    T6_CHECK(!error, directory.string(), ": cannot create the output directory (", error.message(), ")");
  }
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

class CorpusWriter {
 public:
  CorpusWriter(const PreprocessOptions& options, const Tokenizer& tokenizer)
      : options_(options), eot_(tokenizer.eot_id()),
        train_(options.output_dir, spec(tokenizer, "train", options), options.shard_tokens),
        val_(options.output_dir, spec(tokenizer, "val", options), options.shard_tokens) {}

  void write(const TokenizedBatch& batch, const std::vector<InputFile>& files, PreprocessSummary& summary) {
    size_t begin = 0;
    for (size_t i = 0; i < batch.documents.size(); ++i) {
      const bool to_val = goes_to_val(summary.documents);
      SplitWriter& split = to_val ? val_ : train_;
      split.begin_document(files[batch.documents[i].file].path);
      split.append(&eot_, 1);
      const size_t end = batch.document_ends[i];
      split.append(batch.ids.data() + begin, end - begin);
      (to_val ? summary.val_tokens : summary.train_tokens) += 1 + end - begin;
      ++(to_val ? summary.val_documents : summary.train_documents);
      ++summary.documents;
      begin = end;
    }
  }

  std::vector<ShardSummary> finish() {
    std::vector<ShardSummary> shards = train_.finish();
    for (ShardSummary& shard : val_.finish()) shards.push_back(std::move(shard));
    return shards;
  }

  void remove_written_files() {
    std::error_code ignored;
    for (const auto& path : train_.created_files()) fs::remove(path, ignored);
    for (const auto& path : val_.created_files()) fs::remove(path, ignored);
  }

 private:
  static ShardSpec spec(const Tokenizer& tokenizer, const std::string& split, const PreprocessOptions& options) {
    return ShardSpec{tokenizer.name(), tokenizer.vocab_size(), tokenizer.eot_id(), split, options.gzip_level,
                     kTokenizerSha256, std::string(unicode_version())};
  }
  bool goes_to_val(uint64_t document) const {
    if (options_.val_documents > 0) return document < uint64_t(options_.val_documents);
    const double fraction = options_.val_fraction;
    return std::ceil(double(document + 1) * fraction) > std::ceil(double(document) * fraction);
  }
  const PreprocessOptions& options_;
  uint32_t eot_;
  SplitWriter train_, val_;
};

std::string describe_inputs(const std::vector<std::string>& inputs) {
  std::string described;
  for (const auto& input : inputs) described += (described.empty() ? "" : ", ") + input;
  return described;
}

PreprocessSummary write_corpus(const PreprocessOptions& options, const Tokenizer& tokenizer,
                               const std::vector<InputFile>& files, CorpusWriter& writer) {
  PreprocessSummary summary;
  summary.input_files = files.size();
  uint64_t total_file_bytes = 0;
  for (const auto& file : files) total_file_bytes += file.file_bytes;
  ProgressBar progress(stderr, total_file_bytes, options.progress_bar);

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
#pragma omp parallel for schedule(dynamic, 1) num_threads(options.threads)
    for (size_t i = 0; i < round.size(); ++i)
      tokenize_batch(round[i], tokenizer, caches[size_t(omp_get_thread_num())], files, options.jsonl_field);
    // In order, so the first bad document is reported whatever the thread count.
    for (TokenizedBatch& batch : round) {
      if (batch.error) std::rethrow_exception(batch.error);
      writer.write(batch, files, summary);
      summary.input_bytes += batch.text_bytes;
    }
    progress.update(reader.file_bytes_read(), summary.train_tokens + summary.val_tokens);
  }
  progress.finish();

  const std::string inputs = describe_inputs(options.inputs);
  T6_CHECK(summary.documents > 0 && summary.input_bytes > 0, inputs, ": empty corpus (no document holds any text)");
  const bool val_requested = options.val_fraction > 0 || options.val_documents > 0;
  T6_CHECK(summary.train_documents > 0, inputs, ": the train split would be empty (", summary.documents,
           " documents, ", summary.val_documents, " of them for val)");
  T6_CHECK(!val_requested || summary.val_documents > 0, inputs, ": the val split would be empty");
  summary.seconds = progress.elapsed_seconds();
  return summary;
}

}  // namespace

PreprocessSummary run_preprocess(const PreprocessOptions& options) {
  check_options(options);
  const Tokenizer tokenizer = Tokenizer::load(resolve_tokenizer_path(options.tokenizer_path));
  const std::vector<InputFile> files = list_input_files(options.inputs);
  prepare_output_dir(options);

  std::optional<CorpusWriter> writer;
  try {
    writer.emplace(options, tokenizer);
    PreprocessSummary summary = write_corpus(options, tokenizer, files, *writer);
    CorpusIndex index;
    index.format_version = shard_format::kFormatVersion;
    index.tokenizer = tokenizer.name();
    index.tokenizer_sha256 = kTokenizerSha256;
    index.unicode_version = unicode_version();
    index.vocab_size = tokenizer.vocab_size();
    index.eot_id = tokenizer.eot_id();
    index.token_dtype = shard_format::token_bytes_for_vocab(index.vocab_size) == 2 ? "uint16" : "uint32";
    index.shards = writer->finish();
    for (const auto& file : files) index.sources.push_back(file.path);
    summary.shards = index.shards.size();
    write_corpus_index(options.output_dir, index);
    return summary;
  } catch (...) {
    if (writer) writer->remove_written_files();
    throw;
  }
}

}  // namespace t6
