// Byte counts on the command line and in messages: "4GiB", "512MiB", "1.5GB", "1000000" and back.
#pragma once
#include <cstdint>
#include <string>

namespace t6::infer {

// Parses a non-negative byte count with an optional suffix (B, KB/MB/GB/TB powers of 1000,
// KiB/MiB/GiB/TiB powers of 1024). Throws naming `option` on anything else.
uint64_t parse_byte_size(const std::string& text, const std::string& option);
// "1.50 GiB", "12.0 MiB", "512 B".
std::string format_bytes(uint64_t bytes);

}  // namespace t6::infer
