#include "data/token_files.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/progress_bar.h"
#include "data/corpus_inputs.h"

namespace t6 {
namespace {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, "token files hold little-endian values");

constexpr int32_t kLlmcMagic = 20240520;
constexpr int32_t kLlmcVersion = 1;
constexpr uint64_t kLlmcHeaderBytes = 256 * sizeof(int32_t);

bool is_val_file_name(const fs::path& path) {
  const std::string name = path.filename().string();
  return name == "val.bin" || name.find("_val_") != std::string::npos;
}

TokenFile check_token_file(const std::string& path, TokenFileFormat format) {
  TokenFile file;
  file.path = path;
  file.val_by_name = is_val_file_name(path);
  std::error_code error;
  file.file_bytes = fs::file_size(path, error);
  T6_CHECK(!error, path, ": cannot read its size (", error.message(), ")");
  if (format == TokenFileFormat::kRawU16) {
    T6_CHECK(file.file_bytes % 2 == 0, path, ": odd byte count ", file.file_bytes,
             ", so not a file of uint16 tokens (--tokens-format raw-u16)");
    file.tokens = file.file_bytes / 2;
    return file;
  }
  T6_CHECK(file.file_bytes >= kLlmcHeaderBytes, path, ": ", file.file_bytes,
           " bytes, shorter than the 1024-byte header of an llm.c token file");
  int32_t header[256];
  std::ifstream in(path, std::ios::binary);
  T6_CHECK(in.read(reinterpret_cast<char*>(header), sizeof header), path, ": cannot read the llm.c header");
  T6_CHECK(header[0] == kLlmcMagic, path, ": bad magic ", header[0], " (an llm.c token file starts with ", kLlmcMagic,
           "; for nanoGPT's raw uint16 train.bin/val.bin pass --tokens-format raw-u16)");
  T6_CHECK(header[1] == kLlmcVersion, path, ": llm.c token file version ", header[1], ", t6 reads version ",
           kLlmcVersion, " (uint16 GPT-2 tokens)");
  T6_CHECK(header[2] >= 0, path, ": negative token count ", header[2], " in the header");
  file.header_bytes = kLlmcHeaderBytes;
  file.tokens = uint64_t(header[2]);
  T6_CHECK(file.file_bytes == kLlmcHeaderBytes + 2 * file.tokens, path, ": the header says ", file.tokens,
           " tokens (", kLlmcHeaderBytes + 2 * file.tokens, " bytes with the header), the file holds ",
           file.file_bytes, " bytes");
  return file;
}

// Cuts one file's token stream into documents at EOT while it streams past in blocks.
class DocumentCutter {
 public:
  DocumentCutter(const TokenSplitRule& rule, CorpusWriter& writer, uint32_t eot)
      : rule_(rule), writer_(writer), eot_(eot) {}

  // llm.c's fineweb.py cuts its shards at a token count, so a file may begin in the middle of the
  // previous file's last document (and nanoGPT's files end with the EOT that opens the next one):
  // tokens before a file's first EOT continue the open document when it is in the file's split.
  void start_file(const TokenFile& file) {
    file_ = &file;
    const bool same_split = by_number() || open_document_val_ == file.val_by_name;
    in_document_ = in_document_ && same_split;
    if (in_document_) writer_.add_source(file.path);
  }

  // The next tokens of the current file.
  void add(const uint32_t* ids, size_t count) {
    size_t segment = 0;  // start of the tokens not yet handed to the writer
    for (size_t i = 0; i < count; ++i) {
      if (ids[i] != eot_ && in_document_) continue;
      if (i > segment) writer_.append(ids + segment, i - segment);
      begin_document();
      if (ids[i] != eot_) writer_.append(&eot_, 1);  // the file's first tokens come before any EOT
      segment = i;
    }
    if (count > segment) writer_.append(ids + segment, count - segment);
  }

 private:
  bool by_number() const { return rule_.val_fraction > 0 || rule_.val_documents > 0; }

  void begin_document() {
    const bool to_val =
        by_number() ? document_goes_to_val(documents_, rule_.val_fraction, rule_.val_documents) : file_->val_by_name;
    writer_.begin_document(file_->path, to_val);
    ++documents_;
    in_document_ = true;
    open_document_val_ = to_val;
  }

  const TokenSplitRule& rule_;
  CorpusWriter& writer_;
  uint32_t eot_;
  const TokenFile* file_ = nullptr;
  bool in_document_ = false;
  bool open_document_val_ = false;  // the split of the open document
  uint64_t documents_ = 0;
};

}  // namespace

TokenFileFormat parse_token_file_format(const std::string& name) {
  if (name == "llmc") return TokenFileFormat::kLlmc;
  if (name == "raw-u16") return TokenFileFormat::kRawU16;
  fail(str("--tokens-format must be llmc or raw-u16, got '", name, "'"));
}

std::vector<TokenFile> list_token_files(const std::vector<std::string>& inputs, TokenFileFormat format) {
  std::vector<TokenFile> files;
  for (const std::string& input : inputs) {
    std::error_code error;
    T6_CHECK(fs::exists(input, error), input, ": no such file or directory");
    if (!fs::is_directory(input)) {
      files.push_back(check_token_file(input, format));
      continue;
    }
    for (const std::string& path : regular_files_under(input))
      if (fs::path(path).extension() == ".bin") files.push_back(check_token_file(path, format));
  }
  T6_CHECK(!files.empty(), "no token files: no .bin files under the --tokens inputs");
  return files;
}

uint64_t import_token_files(const std::vector<TokenFile>& files, const TokenSplitRule& split, CorpusWriter& writer,
                            const CorpusIdentity& identity, ProgressBar& progress) {
  constexpr size_t kBlockTokens = size_t(1) << 20;
  std::vector<uint16_t> stored(kBlockTokens);
  std::vector<uint32_t> ids(kBlockTokens);
  DocumentCutter cutter(split, writer, identity.eot_id);
  uint64_t bytes_read = 0;
  for (const TokenFile& file : files) {
    std::ifstream in(file.path, std::ios::binary);
    in.seekg(std::streamoff(file.header_bytes));
    T6_CHECK(in, file.path, ": cannot open it for reading");
    cutter.start_file(file);
    for (uint64_t done = 0; done < file.tokens;) {
      const size_t count = size_t(std::min<uint64_t>(kBlockTokens, file.tokens - done));
      T6_CHECK(in.read(reinterpret_cast<char*>(stored.data()), std::streamsize(2 * count)), file.path,
               ": cannot read tokens ", done, " to ", done + count, " (the file shrank while being read?)");
      for (size_t i = 0; i < count; ++i) {
        ids[i] = stored[i];
        T6_CHECK(int64_t(ids[i]) < identity.vocab_size, file.path, ": token ", done + i, " is id ", ids[i],
                 ", outside the vocab of ", identity.vocab_size, " (", identity.tokenizer, ")");
      }
      cutter.add(ids.data(), count);
      done += count;
      bytes_read += 2 * count;
      progress.update(bytes_read, writer.train().tokens + writer.val().tokens);
    }
    bytes_read += file.header_bytes;
  }
  return bytes_read;
}

}  // namespace t6
