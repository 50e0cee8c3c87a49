// SHA-256 (FIPS 180-4), used to check that the tokenizer file is exactly the one the contract names.
// Small and self-contained because no crypto library is linked into t6.
#pragma once
#include <string>
#include <string_view>

namespace t6 {

// Lower-case hex digest of `bytes`.
std::string sha256_hex(std::string_view bytes);

// Lower-case hex digest of a file's contents; throws t6::Error naming the file if it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace t6
