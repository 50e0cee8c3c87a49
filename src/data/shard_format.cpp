#include "data/shard_format.h"

#include <cstdio>

namespace t6::shard_format {

std::string shard_file_name(const std::string& split, int64_t shard_number) {
  char number[32];
  std::snprintf(number, sizeof number, "%05lld", static_cast<long long>(shard_number));
  return split + "_" + number + ".h5";
}

std::string checksum_hex(uint64_t hash) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

}  // namespace t6::shard_format
