#include "data/shard_writer.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/hdf5_image.h"
#include "data/shard_format.h"

namespace t6 {

static_assert(std::endian::native == std::endian::little, "token shards store little-endian values");

namespace {

// A 1-D dataset that starts empty and grows, chunked, with Fletcher32 on every chunk. Times are not
// recorded so that the same tokens always give the same file bytes.
Hdf5Handle create_growing_dataset(hid_t file, const char* name, hid_t file_type, hsize_t chunk, int gzip_level,
                                  const std::string& path) {
  const hsize_t initial = 0, unlimited = H5S_UNLIMITED;
  Hdf5Handle space(hdf5_check(H5Screate_simple(1, &initial, &unlimited), path, "create a dataspace"));
  Hdf5Handle properties(hdf5_check(H5Pcreate(H5P_DATASET_CREATE), path, "create dataset properties"));
  hdf5_check(H5Pset_chunk(properties.get(), 1, &chunk), path, "set the chunk size");
  if (gzip_level > 0) hdf5_check(H5Pset_deflate(properties.get(), unsigned(gzip_level)), path, "enable gzip");
  // Last in the pipeline, so the checksum covers the bytes as stored.
  hdf5_check(H5Pset_fletcher32(properties.get()), path, "enable Fletcher32");
  hdf5_check(H5Pset_obj_track_times(properties.get(), false), path, "disable time tracking");
  return Hdf5Handle(hdf5_check(
      H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, properties.get(), H5P_DEFAULT), path,
      std::string("create dataset ") + name));
}

void append_to_dataset(hid_t dataset, hid_t memory_type, hsize_t already, hsize_t count, const void* values,
                       const std::string& path) {
  const hsize_t new_size = already + count;
  hdf5_check(H5Dset_extent(dataset, &new_size), path, "grow a dataset");
  Hdf5Handle file_space(hdf5_check(H5Dget_space(dataset), path, "get a dataspace"));
  hdf5_check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &already, nullptr, &count, nullptr), path,
             "select a hyperslab");
  Hdf5Handle memory_space(hdf5_check(H5Screate_simple(1, &count, nullptr), path, "create a dataspace"));
  hdf5_check(H5Dwrite(dataset, memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, values), path,
             "write to a dataset");
}

bool shard_disk_full_injected() {
  const char* value = std::getenv("T6_SHARD_DISK_FULL");
  return value && *value && std::strcmp(value, "0") != 0;
}

}  // namespace

ShardWriter::ShardWriter(const std::string& path, const ShardSpec& spec)
    : path_(path), spec_(spec), token_bytes_(shard_format::token_bytes_for_vocab(spec.vocab_size)) {
  Hdf5QuietErrors quiet;
  Hdf5Handle creation(hdf5_check(H5Pcreate(H5P_FILE_CREATE), path_, "create file properties"));
  hdf5_check(H5Pset_obj_track_times(creation.get(), false), path_, "disable time tracking");
  image_ = std::make_unique<Hdf5Image>(path_, size_t(32) << 20, creation.get(), "token shard",
                                       shard_disk_full_injected());
  tokens_ = create_growing_dataset(image_->file(), shard_format::kTokensDataset,
                                   token_bytes_ == 2 ? H5T_STD_U16LE : H5T_STD_U32LE, shard_format::kTokensPerChunk,
                                   spec_.gzip_level, path_);
  pending_.reserve(shard_format::kTokensPerChunk * size_t(token_bytes_));
  checksum_state_ = XXH3_createState();
  XXH3_64bits_reset(checksum_state_);
}

ShardWriter::~ShardWriter() {
  Hdf5QuietErrors quiet;  // an unfinished shard is removed
  tokens_.reset();
  image_.reset();
  if (checksum_state_) XXH3_freeState(checksum_state_);
}

void ShardWriter::append(const uint32_t* ids, size_t count) {
  const size_t token_bytes = size_t(token_bytes_);
  token_count_ += count;
  while (count > 0) {
    // Fill the pending chunk in place: a byte-wise insert per token was most of an import's time.
    const size_t pending_tokens = pending_.size() / token_bytes;
    const size_t taken = std::min(count, size_t(shard_format::kTokensPerChunk) - pending_tokens);
    pending_.resize(pending_.size() + taken * token_bytes);
    unsigned char* out = pending_.data() + pending_tokens * token_bytes;
    for (size_t i = 0; i < taken; ++i) {
      T6_CHECK(int64_t(ids[i]) < spec_.vocab_size, path_, ": token id ", ids[i], " is outside the vocab of ",
               spec_.vocab_size);
      const uint16_t low = uint16_t(ids[i]);
      if (token_bytes == 2)
        std::memcpy(out + 2 * i, &low, 2);
      else
        std::memcpy(out + 4 * i, &ids[i], 4);
    }
    ids += taken;
    count -= taken;
    if (pending_.size() == shard_format::kTokensPerChunk * token_bytes) flush_tokens();
  }
}

void ShardWriter::flush_tokens() {
  if (pending_.empty()) return;
  Hdf5QuietErrors quiet;
  XXH3_64bits_update(checksum_state_, pending_.data(), pending_.size());
  const hsize_t count = pending_.size() / size_t(token_bytes_);
  append_to_dataset(tokens_.get(), token_bytes_ == 2 ? H5T_NATIVE_UINT16 : H5T_NATIVE_UINT32, written_tokens_, count,
                    pending_.data(), path_);
  written_tokens_ += count;
  pending_.clear();
}

void ShardWriter::add_source(const std::string& source_file) {
  if (source_files_.empty() || source_files_.back() != source_file) source_files_.push_back(source_file);
}

ShardSummary ShardWriter::finish() {
  flush_tokens();
  Hdf5QuietErrors quiet;
  Hdf5Handle doc_offsets = create_growing_dataset(image_->file(), shard_format::kDocOffsetsDataset, H5T_STD_U64LE,
                                                  shard_format::kDocOffsetsPerChunk, spec_.gzip_level, path_);
  if (!doc_offsets_.empty())
    append_to_dataset(doc_offsets.get(), H5T_NATIVE_UINT64, 0, doc_offsets_.size(), doc_offsets_.data(), path_);
  doc_offsets.reset();
  tokens_.reset();

  ShardSummary summary;
  summary.file = std::filesystem::path(path_).filename().string();
  summary.split = spec_.split;
  summary.tokens = token_count_;
  summary.documents = doc_offsets_.size();
  summary.checksum = shard_format::checksum_hex(XXH3_64bits_digest(checksum_state_));

  Hdf5Handle root(hdf5_check(H5Gopen2(image_->file(), "/", H5P_DEFAULT), path_, "open the root group"));
  using namespace shard_format;
  write_int64_attribute(root.get(), kFormatVersionAttribute, kFormatVersion, path_);
  write_string_attribute(root.get(), kTokenizerAttribute, spec_.tokenizer, path_);
  write_string_attribute(root.get(), kTokenizerSha256Attribute, spec_.tokenizer_sha256, path_);
  write_string_attribute(root.get(), kUnicodeVersionAttribute, spec_.unicode_version, path_);
  write_int64_attribute(root.get(), kVocabSizeAttribute, spec_.vocab_size, path_);
  write_int64_attribute(root.get(), kEotIdAttribute, spec_.eot_id, path_);
  write_string_attribute(root.get(), kSplitAttribute, spec_.split, path_);
  write_int64_attribute(root.get(), kTokenCountAttribute, int64_t(summary.tokens), path_);
  write_int64_attribute(root.get(), kDocumentCountAttribute, int64_t(summary.documents), path_);
  write_string_attribute(root.get(), kChecksumAttribute, summary.checksum, path_);
  write_string_list_attribute(root.get(), kSourceFilesAttribute, source_files_, path_);
  root.reset();
  image_->write(nullptr);
  image_.reset();
  return summary;
}

SplitWriter::SplitWriter(std::string directory, ShardSpec spec, uint64_t shard_tokens)
    : directory_(std::move(directory)), spec_(std::move(spec)), shard_tokens_(shard_tokens) {
  T6_ASSERT(shard_tokens_ > 0);
}

void SplitWriter::open_next_shard() {
  if (shard_) finished_.push_back(shard_->finish());
  const std::string name = shard_format::shard_file_name(spec_.split, int64_t(finished_.size()));
  const std::string path = (std::filesystem::path(directory_) / name).string();
  shard_ = std::make_unique<ShardWriter>(path, spec_);
  if (!current_source_.empty()) shard_->add_source(current_source_);
}

void SplitWriter::begin_document(const std::string& source_file) {
  current_source_ = source_file;
  if (!shard_ || shard_->token_count() >= shard_tokens_) open_next_shard();
  shard_->add_source(source_file);
  shard_->mark_document_start();
}

void SplitWriter::add_source(const std::string& source_file) {
  current_source_ = source_file;
  if (shard_) shard_->add_source(source_file);
}

void SplitWriter::append(const uint32_t* ids, size_t count) {
  while (count > 0) {
    if (!shard_ || shard_->token_count() >= shard_tokens_) open_next_shard();
    const size_t room = size_t(shard_tokens_ - shard_->token_count());
    const size_t taken = count < room ? count : room;
    shard_->append(ids, taken);
    ids += taken;
    count -= taken;
  }
}

std::vector<ShardSummary> SplitWriter::finish() {
  if (shard_) finished_.push_back(shard_->finish());
  shard_.reset();
  return finished_;
}

}  // namespace t6
