#include "checkpoint/file_checksum.h"

#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace t6::checkpoint {

struct StreamingDigest::State {
  XXH3_state_t* xxh3 = XXH3_createState();
  ~State() { XXH3_freeState(xxh3); }
};

StreamingDigest::StreamingDigest() : state_(std::make_unique<State>()) {
  T6_ASSERT(state_->xxh3 && XXH3_128bits_reset(state_->xxh3) == XXH_OK);
}

StreamingDigest::~StreamingDigest() = default;

void StreamingDigest::update(const void* data, size_t bytes) {
  T6_ASSERT(XXH3_128bits_update(state_->xxh3, data, bytes) == XXH_OK);
  bytes_ += bytes;
}

FileDigest StreamingDigest::finish() const {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state_->xxh3));
  static const char kHex[] = "0123456789abcdef";
  FileDigest digest{bytes_, {}};
  for (unsigned char byte : canonical.digest) {
    digest.xxh3_128 += kHex[byte >> 4];
    digest.xxh3_128 += kHex[byte & 15];
  }
  return digest;
}

FileDigest digest_file(const std::filesystem::path& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  T6_CHECK(file, "cannot open ", path.string(), " to checksum it: ", std::strerror(errno));
  constexpr size_t kBlockBytes = size_t(8) << 20;
  std::vector<unsigned char> block(kBlockBytes);
  StreamingDigest digest;
  while (size_t got = std::fread(block.data(), 1, block.size(), file.get())) digest.update(block.data(), got);
  T6_CHECK(!std::ferror(file.get()), "read error while checksumming ", path.string());
  return digest.finish();
}

}  // namespace t6::checkpoint
