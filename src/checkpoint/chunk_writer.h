// Writes a chunked, Fletcher32-filtered HDF5 dataset by handing HDF5 finished chunks
// (H5Dwrite_chunk), each checksummed here. HDF5's own filter path computes Fletcher-32 a byte pair
// at a time and copies every chunk through its chunk cache and filter buffers: it was most of a
// checkpoint save. The file is the same, byte for byte, as H5Dwrite with the filter writes it, and
// HDF5 verifies the checksums on read as before.
#pragma once
#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace t6::checkpoint {

// HDF5's Fletcher-32 of `bytes` bytes (H5_checksum_fletcher32: big-endian 16-bit words, both sums
// folded into [1, 0xffff], 0 only for all-zero data), from closed forms that vectorise.
uint32_t hdf5_fletcher32(const void* data, size_t bytes);

// Whether every chunk of a dataset of `shape` chunked as `chunk` is a run of whole rows, so that
// its bytes lie back to back in the row-major source.
bool chunks_are_row_runs(const std::vector<hsize_t>& shape, const std::vector<hsize_t>& chunk);

// Writes all of `dataset` (shape, chunk as above, chunks_are_row_runs) from the row-major
// `source`; the last chunk is padded with zeros as HDF5 pads it. `where` names it in errors.
void write_fletcher32_chunks(hid_t dataset, const unsigned char* source, const std::vector<hsize_t>& shape,
                             const std::vector<hsize_t>& chunk, size_t element_bytes, const std::string& where);

}  // namespace t6::checkpoint
