// Damaging files on purpose, for tests of corruption detection: flip bits of one byte, and find
// where a chunk of an HDF5 dataset lies in its file (so the damage hits data, not metadata).
#pragma once
#include <cstdint>
#include <filesystem>

namespace t6::testing {

// XORs the byte at `offset` of the file with `mask` (a bit flip keeps the file's size).
void flip_bits(const std::filesystem::path& path, uint64_t offset, uint8_t mask = 0x10);

// The file offset of the stored chunk of the 1-d dataset `dataset` that holds element `element`.
uint64_t hdf5_chunk_offset(const std::filesystem::path& path, const char* dataset, uint64_t element);

}  // namespace t6::testing
