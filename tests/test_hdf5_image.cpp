// HDF5 files built in memory and streamed to disk (core/hdf5_image.h): with chunks written in the
// background while later ones are built, the file on disk holds exactly the bytes the checksum saw
// and HDF5 reads the data back, with direct writes and with buffered ones (T6_DIRECT_IO=0); a full
// disk during background writes and an image never written both leave no file.
// ctest-labels: data
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "core/error.h"
#include "core/hdf5_image.h"
#include "core/hdf5_util.h"

using namespace t6;

namespace {

constexpr hsize_t kRows = 1000, kColumns = 6000;  // 24 MB of floats, more than one 16 MiB block
constexpr hsize_t kChunkRows = 170;               // chunks of 4.08 MB, the last one short

std::vector<float> test_values() {
  std::vector<float> values(kRows * kColumns);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(i % 9973) * 0.5f - float(i / 9973);
  return values;
}

// A chunked dataset written chunk by chunk with H5Dwrite_chunk, each chunk handed to the image as
// final as soon as it is written, then an attribute written after all of them.
void write_chunked_dataset(Hdf5Image& image, const std::vector<float>& values) {
  const hsize_t dims[2] = {kRows, kColumns}, chunk[2] = {kChunkRows, kColumns};
  Hdf5Handle space(H5Screate_simple(2, dims, nullptr));
  Hdf5Handle properties(H5Pcreate(H5P_DATASET_CREATE));
  ASSERT_GE(H5Pset_chunk(properties.get(), 2, chunk), 0);
  Hdf5Handle dataset(H5Dcreate2(image.file(), "values", H5T_NATIVE_FLOAT, space.get(), H5P_DEFAULT, properties.get(),
                                H5P_DEFAULT));
  ASSERT_TRUE(dataset.valid());
  std::vector<float> padded(kChunkRows * kColumns);
  for (hsize_t row = 0; row < kRows; row += kChunkRows) {
    const hsize_t rows = std::min(kChunkRows, kRows - row);
    std::fill(padded.begin(), padded.end(), 0.0f);
    std::copy_n(values.begin() + std::ptrdiff_t(row * kColumns), rows * kColumns, padded.begin());
    const hsize_t offset[2] = {row, 0};
    ASSERT_GE(H5Dwrite_chunk(dataset.get(), H5P_DEFAULT, 0, offset, padded.size() * sizeof(float), padded.data()), 0);
    haddr_t address = HADDR_UNDEF;
    hsize_t bytes = 0;
    ASSERT_GE(H5Dget_chunk_info_by_coord(dataset.get(), offset, nullptr, &address, &bytes), 0);
    image.write_final_bytes(address, bytes);
  }
  write_string_attribute(dataset.get(), "written", "after the chunks", "test");
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void expect_streamed_file_is_whole(const std::filesystem::path& dir) {
  const auto path = dir / "image.h5";
  const std::vector<float> values = test_values();
  std::string seen;
  {
    Hdf5Image image(path, size_t(8) << 20, H5P_DEFAULT, "test image", false);
    write_chunked_dataset(image, values);
    image.write([&](const unsigned char* data, size_t size) { seen.append(reinterpret_cast<const char*>(data), size); });
  }
  ASSERT_GT(seen.size(), kRows * kColumns * sizeof(float));
  EXPECT_NE(seen.size() % 4096, 0u) << "the file should end in a partial block, to test its padding";
  EXPECT_TRUE(file_bytes(path) == seen) << "the file differs from the bytes checksummed";

  Hdf5QuietErrors quiet;
  Hdf5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  ASSERT_TRUE(file.valid());
  Hdf5Handle dataset(H5Dopen2(file.get(), "values", H5P_DEFAULT));
  std::vector<float> back(values.size());
  ASSERT_GE(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back.data()), 0);
  EXPECT_TRUE(back == values);
  EXPECT_EQ(read_string_attribute(dataset.get(), "written", "test"), "after the chunks");
}

}  // namespace

TEST(Hdf5Image, ChunksWrittenInTheBackgroundMakeTheFileTheChecksumSaw) {
  expect_streamed_file_is_whole(t6::testing::scratch_dir("hdf5_image_direct"));
}

TEST(Hdf5Image, BufferedWritesMakeTheSameFile) {
  ::setenv("T6_DIRECT_IO", "0", 1);
  expect_streamed_file_is_whole(t6::testing::scratch_dir("hdf5_image_buffered"));
  ::unsetenv("T6_DIRECT_IO");
}

TEST(Hdf5Image, FullDiskDuringBackgroundWritesLeavesNoFile) {
  const auto path = t6::testing::scratch_dir("hdf5_image_full") / "image.h5";
  Hdf5Image image(path, size_t(8) << 20, H5P_DEFAULT, "test image", true);
  write_chunked_dataset(image, test_values());
  try {
    image.write(nullptr);
    FAIL() << "a full disk was not reported";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), "cannot write test image " + path.string() + ": No space left on device");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Hdf5Image, ImageNeverWrittenLeavesNoFile) {
  const auto path = t6::testing::scratch_dir("hdf5_image_unwritten") / "image.h5";
  {
    Hdf5Image image(path, size_t(8) << 20, H5P_DEFAULT, "test image", false);
    write_chunked_dataset(image, test_values());
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}
