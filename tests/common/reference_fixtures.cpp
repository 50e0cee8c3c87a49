#include "common/reference_fixtures.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/test_paths.h"

namespace t6::testing {

std::vector<std::filesystem::path> fixture_files() {
  std::vector<std::filesystem::path> files;
  const auto dir = fixture_dir();
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& item : std::filesystem::directory_iterator(dir))
    if (item.path().extension() == ".safetensors") files.push_back(item.path());
  std::sort(files.begin(), files.end());
  return files;
}

int64_t metadata_int(const SafetensorsReader& file, const std::string& key) { return std::stoll(file.metadata().at(key)); }
double metadata_double(const SafetensorsReader& file, const std::string& key) { return std::stod(file.metadata().at(key)); }

float max_abs(const std::vector<float>& values) {
  float largest = 0;
  for (float value : values) largest = std::max(largest, std::fabs(value));
  return largest;
}

double expect_close(const std::string& what, const float* actual, const std::vector<float>& expected, double tolerance) {
  double worst = 0;
  size_t worst_index = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double error = std::fabs(double(actual[i]) - double(expected[i]));
    if (!(error <= worst) || std::isnan(error)) worst = std::isnan(error) ? INFINITY : error, worst_index = i;
  }
  EXPECT_LE(worst, tolerance) << what << ": worst element " << worst_index << " is " << actual[worst_index]
                              << ", reference " << expected[worst_index];
  return worst;
}

}  // namespace t6::testing
