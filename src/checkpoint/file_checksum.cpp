#include "checkpoint/file_checksum.h"

#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"

namespace t6::checkpoint {

FileDigest digest_file(const std::filesystem::path& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  T6_CHECK(file, "cannot open ", path.string(), " to checksum it: ", std::strerror(errno));
  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> state(XXH3_createState(), XXH3_freeState);
  T6_ASSERT(state && XXH3_128bits_reset(state.get()) == XXH_OK);

  constexpr size_t kBlockBytes = size_t(8) << 20;
  std::vector<unsigned char> block(kBlockBytes);
  FileDigest digest;
  while (size_t got = std::fread(block.data(), 1, block.size(), file.get())) {
    T6_ASSERT(XXH3_128bits_update(state.get(), block.data(), got) == XXH_OK);
    digest.bytes += got;
  }
  T6_CHECK(!std::ferror(file.get()), "read error while checksumming ", path.string());

  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state.get()));
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char byte : canonical.digest) {
    digest.xxh3_128 += kHex[byte >> 4];
    digest.xxh3_128 += kHex[byte & 15];
  }
  return digest;
}

}  // namespace t6::checkpoint
