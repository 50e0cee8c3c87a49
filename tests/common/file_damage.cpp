#include "common/file_damage.h"

#include <hdf5.h>

#include <fstream>
#include <stdexcept>

namespace t6::testing {

void flip_bits(const std::filesystem::path& path, uint64_t offset, uint8_t mask) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(std::streamoff(offset));
  char byte = 0;
  file.read(&byte, 1);
  byte = char(byte ^ char(mask));
  file.seekp(std::streamoff(offset));
  file.write(&byte, 1);
  if (!file) throw std::runtime_error("cannot damage " + path.string());
}

uint64_t hdf5_chunk_offset(const std::filesystem::path& path, const char* dataset, uint64_t element) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t data = file >= 0 ? H5Dopen2(file, dataset, H5P_DEFAULT) : -1;
  const hsize_t coordinate = element;
  unsigned filter_mask = 0;
  haddr_t address = 0;
  hsize_t bytes = 0;
  const bool found = data >= 0 && H5Dget_chunk_info_by_coord(data, &coordinate, &filter_mask, &address, &bytes) >= 0;
  if (data >= 0) H5Dclose(data);
  if (file >= 0) H5Fclose(file);
  if (!found) throw std::runtime_error("no chunk of " + std::string(dataset) + " at " + std::to_string(element) + " in " + path.string());
  return address;
}

}  // namespace t6::testing
