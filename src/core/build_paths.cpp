#include "core/build_paths.h"

namespace t6 {

std::filesystem::path build_source_dir() { return T6_SOURCE_DIR; }
std::filesystem::path default_tokenizer_path() { return T6_DEFAULT_TOKENIZER; }

}  // namespace t6
