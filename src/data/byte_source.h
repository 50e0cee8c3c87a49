// Sequential reading of an input file that may be plain, gzip- or zstd-compressed; errors name the file.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace t6 {

enum class Compression { kNone, kGzip, kZstd };

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to `capacity` decompressed bytes into `out`; 0 only at the end of the data.
  virtual size_t read(char* out, size_t capacity) = 0;
  // Bytes of the file itself (compressed) consumed so far, for progress against file sizes.
  virtual uint64_t file_bytes_read() const = 0;
};

std::unique_ptr<ByteSource> open_byte_source(const std::string& path, Compression compression);

}  // namespace t6
