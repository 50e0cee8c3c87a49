#include "data/byte_source.h"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace t6 {
namespace {

FILE* open_for_reading(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "rb");
  T6_CHECK(file != nullptr, path, ": cannot open (", std::strerror(errno), ")");
  return file;
}

class PlainSource final : public ByteSource {
 public:
  explicit PlainSource(const std::string& path) : path_(path), file_(open_for_reading(path)) {}
  ~PlainSource() override { std::fclose(file_); }
  size_t read(char* out, size_t capacity) override {
    const size_t count = std::fread(out, 1, capacity, file_);
    T6_CHECK(count > 0 || !std::ferror(file_), path_, ": read error (", std::strerror(errno), ")");
    consumed_ += count;
    return count;
  }
  uint64_t file_bytes_read() const override { return consumed_; }

 private:
  std::string path_;
  FILE* file_;
  uint64_t consumed_ = 0;
};

class GzipSource final : public ByteSource {
 public:
  explicit GzipSource(const std::string& path) : path_(path) {
    file_ = gzopen(path.c_str(), "rb");
    T6_CHECK(file_ != nullptr, path, ": cannot open (", std::strerror(errno), ")");
    gzbuffer(file_, 1 << 20);
  }
  ~GzipSource() override { gzclose(file_); }
  size_t read(char* out, size_t capacity) override {
    const int count = gzread(file_, out, unsigned(std::min<size_t>(capacity, 1u << 30)));
    int error_code = Z_OK;
    const char* message = gzerror(file_, &error_code);
    // A truncated stream still returns what it holds, then 0 with Z_BUF_ERROR.
    T6_CHECK(count > 0 || (count == 0 && error_code == Z_OK), path_, ": corrupt or truncated gzip data (", message,
             ")");
    // zlib passes non-gzip bytes through unchanged; a .gz name promises gzip, so that is an error.
    T6_CHECK(count == 0 || !gzdirect(file_), path_, ": not gzip data");
    return size_t(count);
  }
  uint64_t file_bytes_read() const override { return uint64_t(gzoffset(file_)); }

 private:
  std::string path_;
  gzFile file_;
};

class ZstdSource final : public ByteSource {
 public:
  explicit ZstdSource(const std::string& path)
      : path_(path), file_(open_for_reading(path)), context_(ZSTD_createDCtx()), input_(ZSTD_DStreamInSize()) {}
  ~ZstdSource() override {
    ZSTD_freeDCtx(context_);
    std::fclose(file_);
  }
  size_t read(char* out, size_t capacity) override {
    ZSTD_outBuffer output{out, capacity, 0};
    while (output.pos == 0) {
      // After a call that filled the output, the decoder may hold more: drain it before reading on.
      if (in_.pos == in_.size && !output_was_full_) {
        const size_t count = std::fread(input_.data(), 1, input_.size(), file_);
        T6_CHECK(count > 0 || !std::ferror(file_), path_, ": read error (", std::strerror(errno), ")");
        consumed_ += count;
        if (count == 0) {
          T6_CHECK(frame_done_, path_, ": truncated zstd data");
          return 0;
        }
        in_ = ZSTD_inBuffer{input_.data(), count, 0};
      }
      const size_t result = ZSTD_decompressStream(context_, &output, &in_);
      T6_CHECK(!ZSTD_isError(result), path_, ": corrupt zstd data (", ZSTD_getErrorName(result), ")");
      frame_done_ = result == 0;
      output_was_full_ = output.pos == output.size;
    }
    return output.pos;
  }
  uint64_t file_bytes_read() const override { return consumed_; }

 private:
  std::string path_;
  FILE* file_;
  ZSTD_DCtx* context_;
  std::vector<char> input_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  bool frame_done_ = true;
  bool output_was_full_ = false;
  uint64_t consumed_ = 0;
};

}  // namespace

std::unique_ptr<ByteSource> open_byte_source(const std::string& path, Compression compression) {
  switch (compression) {
    case Compression::kGzip: return std::make_unique<GzipSource>(path);
    case Compression::kZstd: return std::make_unique<ZstdSource>(path);
    case Compression::kNone: break;
  }
  return std::make_unique<PlainSource>(path);
}

}  // namespace t6
