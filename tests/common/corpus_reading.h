// Reading a written token corpus back in tests, shard by shard through ShardReader (independently of
// the TokenLoader).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace t6::testing {

// Every token of a split of the corpus at `directory`, in index order.
std::vector<int32_t> split_tokens(const std::filesystem::path& directory, const std::string& split);

}  // namespace t6::testing
