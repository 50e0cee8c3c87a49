#include "data/shard_reader.h"

#include <filesystem>

#include "core/error.h"

namespace t6 {

ShardReader::ShardReader(const std::string& path) : path_(path) {
  T6_CHECK(std::filesystem::is_regular_file(path_), path_, ": shard file is missing");
  Hdf5QuietErrors quiet;
  file_ = Hdf5Handle(hdf5_check(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path_,
                                "open the shard (truncated or not an HDF5 file?)"));
  Hdf5Handle access(hdf5_check(H5Pcreate(H5P_DATASET_ACCESS), path_, "create dataset access properties"));
  hdf5_check(H5Pset_chunk_cache(access.get(), 521, kChunkCacheBytes, 1.0), path_, "set the chunk cache");
  T6_CHECK(H5Lexists(file_.get(), shard_format::kTokensDataset, H5P_DEFAULT) > 0, path_, ": no dataset '",
           shard_format::kTokensDataset, "'");
  tokens_ = Hdf5Handle(hdf5_check(H5Dopen2(file_.get(), shard_format::kTokensDataset, access.get()), path_,
                                  "open dataset tokens"));
  Hdf5Handle space(hdf5_check(H5Dget_space(tokens_.get()), path_, "read the shape of tokens"));
  T6_CHECK(H5Sget_simple_extent_ndims(space.get()) == 1, path_, ": dataset tokens is not 1-D");
  hsize_t length = 0;
  H5Sget_simple_extent_dims(space.get(), &length, nullptr);
  length_ = length;
  Hdf5Handle type(hdf5_check(H5Dget_type(tokens_.get()), path_, "read the type of tokens"));
  T6_CHECK(H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_sign(type.get()) == H5T_SGN_NONE, path_,
           ": dataset tokens is not of unsigned integers");
  token_bytes_ = int(H5Tget_size(type.get()));
  T6_CHECK(token_bytes_ == 2 || token_bytes_ == 4, path_, ": tokens are ", token_bytes_, "-byte integers");

  using namespace shard_format;
  Hdf5Handle root(hdf5_check(H5Gopen2(file_.get(), "/", H5P_DEFAULT), path_, "open the root group"));
  attributes_.format_version = read_int64_attribute(root.get(), kFormatVersionAttribute, path_);
  T6_CHECK(attributes_.format_version == kFormatVersion, path_, ": shard format version ",
           attributes_.format_version, ", this t6 reads version ", kFormatVersion);
  attributes_.tokenizer = read_string_attribute(root.get(), kTokenizerAttribute, path_);
  attributes_.tokenizer_sha256 = read_string_attribute(root.get(), kTokenizerSha256Attribute, path_);
  attributes_.unicode_version = read_string_attribute(root.get(), kUnicodeVersionAttribute, path_);
  attributes_.vocab_size = read_int64_attribute(root.get(), kVocabSizeAttribute, path_);
  attributes_.eot_id = read_int64_attribute(root.get(), kEotIdAttribute, path_);
  attributes_.split = read_string_attribute(root.get(), kSplitAttribute, path_);
  attributes_.token_count = uint64_t(read_int64_attribute(root.get(), kTokenCountAttribute, path_));
  attributes_.document_count = uint64_t(read_int64_attribute(root.get(), kDocumentCountAttribute, path_));
  attributes_.checksum = read_string_attribute(root.get(), kChecksumAttribute, path_);
  attributes_.source_files = read_string_list_attribute(root.get(), kSourceFilesAttribute, path_);
  T6_CHECK(attributes_.token_count == length_, path_, ": attribute token_count is ", attributes_.token_count,
           " but dataset tokens holds ", length_);
  T6_CHECK(token_bytes_ == token_bytes_for_vocab(attributes_.vocab_size), path_, ": ", token_bytes_,
           "-byte tokens do not fit a vocab of ", attributes_.vocab_size);
}

void ShardReader::read_range(uint64_t offset, uint64_t count, hid_t memory_type, void* out) const {
  T6_CHECK(offset + count <= length_, path_, ": read of tokens [", offset, ", ", offset + count,
           ") past the end (", length_, ")");
  if (count == 0) return;
  Hdf5QuietErrors quiet;
  Hdf5Handle file_space(hdf5_check(H5Dget_space(tokens_.get()), path_, "get a dataspace"));
  const hsize_t start = offset, size = count;
  hdf5_check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &size, nullptr), path_,
             "select a hyperslab");
  Hdf5Handle memory_space(hdf5_check(H5Screate_simple(1, &size, nullptr), path_, "create a dataspace"));
  T6_CHECK(H5Dread(tokens_.get(), memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, out) >= 0, path_,
           ": cannot read tokens [", offset, ", ", offset + count, ") (", hdf5_error_text(),
           "): the shard is corrupt or truncated");
}

void ShardReader::read_tokens(uint64_t offset, uint64_t count, int32_t* out) const {
  read_range(offset, count, H5T_NATIVE_INT32, out);
}

void ShardReader::read_stored_tokens(uint64_t offset, uint64_t count, void* out) const {
  read_range(offset, count, token_bytes_ == 2 ? H5T_NATIVE_UINT16 : H5T_NATIVE_UINT32, out);
}

std::vector<uint64_t> ShardReader::read_doc_offsets() const {
  Hdf5QuietErrors quiet;
  Hdf5Handle dataset(hdf5_check(H5Dopen2(file_.get(), shard_format::kDocOffsetsDataset, H5P_DEFAULT), path_,
                                "open dataset doc_offsets"));
  Hdf5Handle space(hdf5_check(H5Dget_space(dataset.get()), path_, "read the shape of doc_offsets"));
  hsize_t count = 0;
  H5Sget_simple_extent_dims(space.get(), &count, nullptr);
  std::vector<uint64_t> offsets(count);
  if (count > 0)
    T6_CHECK(H5Dread(dataset.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, offsets.data()) >= 0, path_,
             ": cannot read doc_offsets (", hdf5_error_text(), "): the shard is corrupt or truncated");
  return offsets;
}

}  // namespace t6
