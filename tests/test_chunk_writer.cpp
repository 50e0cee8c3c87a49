// The checkpoint's direct chunk writer against HDF5 itself: its Fletcher-32 equals HDF5's own
// H5_checksum_fletcher32 on every length and on the fold's edge cases, and a dataset written
// through it holds exactly the bytes (each chunk and its stored checksum) that H5Dwrite with the
// Fletcher32 filter writes, reads back through HDF5's checksum check, and fails it when damaged.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstring>
#include <random>
#include <vector>

#include "checkpoint/chunk_writer.h"

extern "C" uint32_t H5_checksum_fletcher32(const void* data, size_t bytes);  // exported by libhdf5

using namespace t6::checkpoint;

namespace {

TEST(Fletcher32, EqualsHdf5sOwnOnEveryLengthAndFill) {
  std::mt19937 generator(7);
  // Around the closed form's block (2^15 words) and HDF5's own (360 words), odd tails included.
  for (size_t bytes : std::vector<size_t>{0, 1, 2, 3, 4, 7, 719, 720, 721, 65535, 65536, 65537, 131071, 131072, 1000001, 4 << 20}) {
    for (int fill = 0; fill < 4; ++fill) {
      std::vector<unsigned char> data(bytes);
      for (unsigned char& byte : data)
        byte = fill == 0 ? 0 : fill == 1 ? 0xff : fill == 2 ? (&byte - data.data()) % 2 * 0xff : generator();
      EXPECT_EQ(hdf5_fletcher32(data.data(), bytes), H5_checksum_fletcher32(data.data(), bytes))
          << bytes << " bytes, fill " << fill;
    }
  }
}

TEST(ChunkWriter, ChunksAreRowRunsOnlyWhenTrailingAxesAreWhole) {
  EXPECT_TRUE(chunks_are_row_runs({10, 4}, {3, 4}));
  EXPECT_TRUE(chunks_are_row_runs({10}, {4}));
  EXPECT_FALSE(chunks_are_row_runs({10, 4}, {1, 2}));
  EXPECT_FALSE(chunks_are_row_runs({0, 4}, {1, 4}));
  EXPECT_FALSE(chunks_are_row_runs({}, {}));
}

// An in-memory HDF5 file (the name only tells files apart) with one float dataset of `shape`, chunked as `chunk`, with Fletcher32.
struct MemoryFile {
  hid_t file = -1, dataset = -1;
  MemoryFile(const char* name, const std::vector<hsize_t>& shape, const std::vector<hsize_t>& chunk) {
    const hid_t access = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(access, 1 << 20, false);
    file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, access);
    H5Pclose(access);
    const hid_t space = H5Screate_simple(int(shape.size()), shape.data(), nullptr);
    const hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(properties, int(chunk.size()), chunk.data());
    H5Pset_fletcher32(properties);
    dataset = H5Dcreate2(file, "d", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, properties, H5P_DEFAULT);
    H5Pclose(properties);
    H5Sclose(space);
  }
  ~MemoryFile() {
    H5Dclose(dataset);
    H5Fclose(file);
  }
  // The stored bytes of the chunk at `offset`: data, then the checksum.
  std::vector<unsigned char> raw_chunk(const std::vector<hsize_t>& offset) const {
    hsize_t bytes = 0;
    EXPECT_GE(H5Dget_chunk_storage_size(dataset, offset.data(), &bytes), 0);
    std::vector<unsigned char> raw(bytes);
    uint32_t filters = 0;
    EXPECT_GE(H5Dread_chunk(dataset, H5P_DEFAULT, offset.data(), &filters, raw.data()), 0);
    return raw;
  }
};

TEST(ChunkWriter, WritesTheBytesHdf5sFilterWritesAndReadsBack) {
  const std::vector<hsize_t> shape = {37, 5}, chunk = {8, 5};  // a partial last chunk of 5 rows
  std::vector<float> values(37 * 5);
  std::mt19937 generator(3);
  std::normal_distribution<float> normal;
  for (float& value : values) value = normal(generator);
  MemoryFile by_hdf5("by_hdf5.h5", shape, chunk), direct("direct.h5", shape, chunk);
  ASSERT_GE(H5Dwrite(by_hdf5.dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  write_fletcher32_chunks(direct.dataset, reinterpret_cast<const unsigned char*>(values.data()), shape, chunk, 4,
                          "test dataset");
  H5Fflush(by_hdf5.file, H5F_SCOPE_GLOBAL);
  H5Fflush(direct.file, H5F_SCOPE_GLOBAL);
  for (hsize_t row = 0; row < shape[0]; row += chunk[0]) {
    SCOPED_TRACE(row);
    const std::vector<unsigned char> expected = by_hdf5.raw_chunk({row, 0});
    EXPECT_EQ(expected.size(), 8 * 5 * 4 + 4u);
    EXPECT_EQ(direct.raw_chunk({row, 0}), expected);
  }
  std::vector<float> read_back(values.size());
  ASSERT_GE(H5Dread(direct.dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, read_back.data()), 0);
  EXPECT_EQ(read_back, values);
}

TEST(ChunkWriter, ADamagedChunkFailsHdf5sChecksumOnRead) {
  const std::vector<hsize_t> shape = {16}, chunk = {8};
  std::vector<float> values(16, 1.5f);
  MemoryFile file("damaged.h5", shape, chunk);
  write_fletcher32_chunks(file.dataset, reinterpret_cast<const unsigned char*>(values.data()), shape, chunk, 4, "test");
  // Rewrite chunk 1 with its data changed but the old checksum kept, as a bit flip on disk would.
  std::vector<unsigned char> raw = file.raw_chunk({8});
  raw[3] ^= 0x10;
  const hsize_t offset[1] = {8};
  ASSERT_GE(H5Dwrite_chunk(file.dataset, H5P_DEFAULT, 0, offset, raw.size(), raw.data()), 0);
  std::vector<float> read_back(16);
  H5E_BEGIN_TRY { EXPECT_LT(H5Dread(file.dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, read_back.data()), 0); }
  H5E_END_TRY;
}

}  // namespace
