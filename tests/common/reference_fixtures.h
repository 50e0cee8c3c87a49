// The reference fixtures (tests/fixtures/README.md) as the conformance tests read them: the files
// of the fixture directory, enumerated when the test runs, their metadata, and the element-wise
// comparison with the reference that reports the worst element (NaN-aware).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/safetensors.h"

namespace t6::testing {

// Every *.safetensors file of fixture_dir() ($T6_FIXTURE_DIR or tests/fixtures), sorted; empty when
// there is none (the tests make that a failure).
std::vector<std::filesystem::path> fixture_files();

int64_t metadata_int(const SafetensorsReader& file, const std::string& key);
double metadata_double(const SafetensorsReader& file, const std::string& key);

float max_abs(const std::vector<float>& values);

// Element-wise |actual − expected| <= tolerance; reports the worst element, and a NaN as the worst.
// Returns the worst error (infinity for a NaN).
double expect_close(const std::string& what, const float* actual, const std::vector<float>& expected, double tolerance);

}  // namespace t6::testing
