// CRC-32C (Castagnoli), the checksum of TFRecord framing (TensorBoard event files).
#pragma once
#include <cstddef>
#include <cstdint>

namespace t6 {

uint32_t crc32c(const void* data, size_t size);

}  // namespace t6
