// Token files of other tools as preprocessor input (t6_preprocess --tokens), so an existing
// tokenised corpus becomes t6 shards without re-tokenising:
//   llmc     llm.c's .bin shards (the reference repo's data/fineweb-edu/fineweb-edu.py): a header
//            of 256 little-endian int32 (magic 20240520, version 1, token count), then uint16 tokens;
//   raw-u16  nanoGPT's train.bin / val.bin: nothing but little-endian uint16 tokens.
// Documents are recovered at EOT: each EOT starts one. Tokens before a file's first EOT continue the
// previous file's last document when that one is in the same split (llm.c cuts shards at a token
// count, mid-document); otherwise they form a document of their own, to which an EOT is prepended
// (t6 documents begin with EOT). The split comes from the file names (a name containing "_val_", or
// val.bin, is val; the rest train), or, given a val fraction or count, from the document numbers as
// for text (preprocess.h). Files are read in the order given, directories' .bin files sorted by path.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/corpus_writer.h"

namespace t6 {

class ProgressBar;

enum class TokenFileFormat { kLlmc, kRawU16 };

// "llmc" or "raw-u16"; throws naming the accepted values otherwise.
TokenFileFormat parse_token_file_format(const std::string& name);

struct TokenFile {
  std::string path;
  bool val_by_name = false;  // *_val_* or val.bin
  uint64_t header_bytes = 0;
  uint64_t tokens = 0;
  uint64_t file_bytes = 0;
};

// Expands directories (their .bin files, sorted by path) and checks every file's header and size
// (bad magic or version, a header count that disagrees with the size, an odd byte count), so that a
// bad input stops the run before anything is written. Throws t6::Error naming the file.
std::vector<TokenFile> list_token_files(const std::vector<std::string>& inputs, TokenFileFormat format);

struct TokenSplitRule {
  double val_fraction = 0.0;  // either of these: by document number; neither: by file name
  int64_t val_documents = 0;
};

// Streams the files' tokens into `writer`, document by document; a token outside the vocab throws
// naming the file and the token's index. Returns the bytes read.
uint64_t import_token_files(const std::vector<TokenFile>& files, const TokenSplitRule& split, CorpusWriter& writer,
                            const CorpusIdentity& identity, ProgressBar& progress);

}  // namespace t6
