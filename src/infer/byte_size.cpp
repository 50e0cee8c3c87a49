#include "infer/byte_size.h"

#include <cmath>
#include <cstdio>
#include <utility>

#include "core/error.h"

namespace t6::infer {

uint64_t parse_byte_size(const std::string& text, const std::string& option) {
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1},          {"B", 1},          {"KB", 1e3},         {"MB", 1e6},          {"GB", 1e9},
      {"TB", 1e12},     {"KiB", 1024.0},   {"MiB", 1048576.0},  {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = text.substr(used);
  for (const auto& [name, scale] : kUnits)
    if (used > 0 && unit == name && std::isfinite(value) && value >= 0) return uint64_t(value * scale);
  fail(str(option, " '", text, "' is not a byte count (e.g. 4GiB, 512MiB, 2GB, 1000000)"));
}

std::string format_bytes(uint64_t bytes) {
  static const char* const kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = double(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) value /= 1024, ++unit;
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.2f %s", value, kNames[unit]);
  return text;
}

}  // namespace t6::infer
