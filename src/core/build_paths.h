// Paths fixed when t6 was configured: the source tree and the default tokenizer file. They are
// compiled into build_paths.cpp alone, so no other object depends on where the checkout lives.
#pragma once
#include <filesystem>

namespace t6 {

std::filesystem::path build_source_dir();        // the checkout t6 was built from
std::filesystem::path default_tokenizer_path();  // where data_tools/fetch_tokenizer.sh puts r50k_base

}  // namespace t6
