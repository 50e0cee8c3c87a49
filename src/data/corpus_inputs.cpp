#include "data/corpus_inputs.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// The file's kind from its name, or false if it is not an input t6 reads.
bool classify(const std::string& path, InputFile& file) {
  std::string_view name = path;
  file.compression = Compression::kNone;
  if (ends_with(name, ".gz")) {
    file.compression = Compression::kGzip;
    name.remove_suffix(3);
  } else if (ends_with(name, ".zst")) {
    file.compression = Compression::kZstd;
    name.remove_suffix(4);
  }
  if (ends_with(name, ".txt")) {
    file.format = InputFormat::kText;
  } else if (ends_with(name, ".jsonl")) {
    file.format = InputFormat::kJsonl;
  } else {
    return false;
  }
  file.path = path;
  std::error_code error;
  file.file_bytes = fs::file_size(path, error);
  T6_CHECK(!error, path, ": cannot read its size (", error.message(), ")");
  return true;
}

bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

}  // namespace

std::vector<std::string> regular_files_under(const std::string& directory) {
  std::vector<std::string> found;
  std::error_code error;
  for (fs::recursive_directory_iterator it(directory, error), end; !error && it != end; it.increment(error))
    if (it->is_regular_file()) found.push_back(it->path().string());
  T6_CHECK(!error, directory, ": cannot list the directory (", error.message(), ")");
  std::sort(found.begin(), found.end());
  return found;
}

std::vector<InputFile> list_input_files(const std::vector<std::string>& inputs) {
  T6_CHECK(!inputs.empty(), "no inputs given (--input PATH...)");
  std::vector<InputFile> files;
  for (const std::string& input : inputs) {
    std::error_code error;
    const fs::file_status status = fs::status(input, error);
    T6_CHECK(!error && fs::exists(status), input, ": no such file or directory");
    InputFile file;
    if (fs::is_directory(status)) {
      for (const std::string& path : regular_files_under(input))
        if (classify(path, file)) files.push_back(file);
    } else {
      T6_CHECK(classify(input, file), input, ": unknown input type (expected .txt or .jsonl, optionally .gz or .zst)");
      files.push_back(file);
    }
  }
  T6_CHECK(!files.empty(), "empty corpus: no .txt or .jsonl files under the inputs");
  return files;
}

RawDocumentReader::RawDocumentReader(std::vector<InputFile> files) : files_(std::move(files)) {}
RawDocumentReader::~RawDocumentReader() = default;

bool RawDocumentReader::fill_buffer() {
  constexpr size_t kReadBytes = size_t(1) << 20;
  buffer_.erase(0, buffer_start_);
  buffer_start_ = 0;
  const size_t old_size = buffer_.size();
  buffer_.resize(old_size + kReadBytes);
  const size_t count = source_->read(buffer_.data() + old_size, kReadBytes);
  buffer_.resize(old_size + count);
  return count > 0;
}

bool RawDocumentReader::next_document(RawDocument& document) {
  while (true) {
    if (!source_) {
      if (next_file_ == files_.size()) return false;
      source_ = open_byte_source(files_[next_file_].path, files_[next_file_].compression);
      buffer_.clear();
      buffer_start_ = 0;
      line_number_ = 0;
    }
    const InputFile& file = files_[next_file_];
    document.file = uint32_t(next_file_);
    if (file.format == InputFormat::kText) {
      while (fill_buffer()) {
      }
      document.line = 0;
      document.bytes = std::move(buffer_);
    } else {
      size_t newline;
      while ((newline = buffer_.find('\n', buffer_start_)) == std::string::npos && fill_buffer()) {
      }
      if (newline == std::string::npos && buffer_start_ == buffer_.size()) {
        finished_file_bytes_ += source_->file_bytes_read();
        source_.reset();
        ++next_file_;
        continue;
      }
      const size_t line_end = newline == std::string::npos ? buffer_.size() : newline;
      const std::string_view line(buffer_.data() + buffer_start_, line_end - buffer_start_);
      ++line_number_;
      buffer_start_ = newline == std::string::npos ? buffer_.size() : newline + 1;
      if (is_blank(line)) continue;
      document.line = line_number_;
      document.bytes.assign(line);
      return true;
    }
    finished_file_bytes_ += source_->file_bytes_read();
    source_.reset();
    ++next_file_;
    return true;
  }
}

bool RawDocumentReader::next_batch(std::vector<RawDocument>& batch, size_t target_bytes) {
  size_t bytes = 0;
  bool appended = false;
  RawDocument document;
  while (bytes < target_bytes && next_document(document)) {
    bytes += document.bytes.size();
    batch.push_back(std::move(document));
    appended = true;
  }
  return appended;
}

std::string jsonl_document_text(std::string_view line, const std::string& field, const std::string& path,
                                uint64_t line_number) {
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& error) {
    fail(str(path, ":", line_number, ": malformed JSON (", error.what(), ")"));
  }
  T6_CHECK(object.is_object(), path, ":", line_number, ": expected a JSON object, found ", object.type_name());
  const auto found = object.find(field);
  T6_CHECK(found != object.end(), path, ":", line_number, ": no field \"", field, "\"");
  T6_CHECK(found->is_string(), path, ":", line_number, ": field \"", field, "\" is a ", found->type_name(),
           ", not a string");
  return found->get<std::string>();
}

}  // namespace t6
