// The preprocessor's inputs: which files (directories expanded), and their documents in order.
// A .txt file is one document, verbatim; a .jsonl file is one document per non-blank line, the text
// in a named string field. Either may be compressed (.gz, .zst). Errors name the file and line.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/byte_source.h"

namespace t6 {

enum class InputFormat { kText, kJsonl };

struct InputFile {
  std::string path;
  InputFormat format;
  Compression compression;
  uint64_t file_bytes;
};

// Expands directories recursively (sorted by path, keeping only .txt/.jsonl files and their .gz/.zst
// forms); a file named directly must have one of those extensions. Throws on a missing path or none.
std::vector<InputFile> list_input_files(const std::vector<std::string>& inputs);

// Every regular file under `directory`, recursively, sorted by path. Throws naming it if unreadable.
std::vector<std::string> regular_files_under(const std::string& directory);

// A document as read, before any parsing: the whole file (.txt) or one line (.jsonl).
struct RawDocument {
  uint32_t file;          // index into the input files
  uint64_t line;          // 1-based line of a .jsonl document; 0 for a .txt file
  std::string bytes;
};

class RawDocumentReader {
 public:
  explicit RawDocumentReader(std::vector<InputFile> files);
  ~RawDocumentReader();
  // Appends the next documents to `batch` until they hold at least `target_bytes` or the inputs end;
  // returns false once nothing was left to append.
  bool next_batch(std::vector<RawDocument>& batch, size_t target_bytes);
  uint64_t file_bytes_read() const { return finished_file_bytes_ + (source_ ? source_->file_bytes_read() : 0); }
  const std::vector<InputFile>& files() const { return files_; }

 private:
  bool next_document(RawDocument& document);
  bool fill_buffer();
  std::vector<InputFile> files_;
  size_t next_file_ = 0;
  std::unique_ptr<ByteSource> source_;  // the open file, if any
  std::string buffer_;                  // bytes read from source_ not yet handed out
  size_t buffer_start_ = 0;
  uint64_t line_number_ = 0;
  uint64_t finished_file_bytes_ = 0;
};

// The document text of one .jsonl line: its string field `field`. Throws "FILE:LINE: ..." if the line
// is not JSON, not an object, or lacks that string field.
std::string jsonl_document_text(std::string_view line, const std::string& field, const std::string& path,
                                uint64_t line_number);

}  // namespace t6
