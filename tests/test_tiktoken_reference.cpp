// t6's tokenizer against the real tiktoken (npm tiktoken 1.0.22, its Rust core as WASM, Unicode 16):
// tests/tiktoken_cases.mjs writes ~29,000 generated stress strings and every Unicode scalar value c
// as c + "'s" and " " + c + "!", each with tiktoken's ids; t6 must give the same ids for every one.
// ctest-labels: data
// ctest-timeout: 300
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/test_paths.h"
#include "data/tokenizer.h"

namespace t6 {
namespace {

uint16_t read_u16(std::istream& in) {
  unsigned char bytes[2] = {0, 0};
  in.read(reinterpret_cast<char*>(bytes), 2);
  return uint16_t(bytes[0] | bytes[1] << 8);
}

const Tokenizer& tokenizer() {
  static const Tokenizer loaded = Tokenizer::load(resolve_tokenizer_path(""));
  return loaded;
}

std::string code_points_of(const std::string& text) {
  std::ostringstream out;
  for (size_t at = 0; at < text.size();) {
    const auto lead = static_cast<unsigned char>(text[at]);
    const int length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    uint32_t cp = length == 1 ? lead : lead & (0x7F >> length);
    for (int i = 1; i < length; ++i) cp = cp << 6 | (static_cast<unsigned char>(text[at + size_t(i)]) & 0x3F);
    char hex[16];
    std::snprintf(hex, sizeof hex, "U+%04X ", cp);
    out << hex;
    at += size_t(length);
  }
  return out.str();
}

std::string ids_of(const std::vector<uint32_t>& ids) {
  std::ostringstream out;
  for (uint32_t id : ids) out << id << ' ';
  return out.str();
}

struct Comparison {
  uint64_t cases = 0, mismatches = 0;
  std::vector<std::string> first_mismatches;  // the first 20, with code points and both id lists
};

struct ReferenceComparison {
  std::string summary;  // what the script printed
  Comparison stress, code_point;
};

// Runs the script once for the whole test binary, then reads its cases one by one and encodes each
// with one shared cache (as a preprocessor thread does).
const ReferenceComparison& reference_comparison() {
  static const ReferenceComparison result = [] {
    ReferenceComparison compared;
    const auto directory = testing::scratch_dir("tiktoken_reference");
    const auto file = directory / "cases.bin";
    const std::string command = testing::node() + " " + (testing::source_dir() / "tests/tiktoken_cases.mjs").string() +
                                " " + testing::node_modules_dir().string() + " " + file.string();
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return compared;
    char line[512];
    while (std::fgets(line, sizeof line, pipe)) compared.summary += line;
    if (pclose(pipe) != 0) {
      compared.summary = command + " failed (run data_tools/fetch_node_packages.sh?): " + compared.summary;
      return compared;
    }
    std::ifstream in(file, std::ios::binary);
    BpeCache cache;
    std::string text;
    std::vector<uint32_t> expected, ids;
    while (in.peek() != EOF) {
      Comparison& kind = in.get() == 0 ? compared.stress : compared.code_point;
      text.resize(read_u16(in));
      in.read(text.data(), std::streamsize(text.size()));
      expected.resize(read_u16(in));
      for (uint32_t& id : expected) id = read_u16(in);
      if (!in.good()) {
        compared.summary += file.string() + " is truncated";
        break;
      }
      ids.clear();
      tokenizer().encode(text, cache, ids);
      ++kind.cases;
      if (ids == expected) continue;
      if (++kind.mismatches <= 20)
        kind.first_mismatches.push_back("text " + code_points_of(text) + "\n  tiktoken: " + ids_of(expected) +
                                        "\n  t6:       " + ids_of(ids));
    }
    return compared;
  }();
  return result;
}

void expect_no_mismatch(const Comparison& comparison) {
  for (const std::string& mismatch : comparison.first_mismatches) ADD_FAILURE() << mismatch;
  EXPECT_EQ(comparison.mismatches, 0u) << "of " << comparison.cases << " cases";
}

TEST(TiktokenReference, GeneratedStressStrings) {
  const ReferenceComparison& compared = reference_comparison();
  std::printf("tiktoken_cases.mjs: %s", compared.summary.c_str());
  EXPECT_GE(compared.stress.cases, 20000u) << compared.summary;
  expect_no_mismatch(compared.stress);
}

TEST(TiktokenReference, EveryCodePointBeforeAContractionAndBetweenSpaceAndPunctuation) {
  const ReferenceComparison& compared = reference_comparison();
  EXPECT_EQ(compared.code_point.cases, 2u * (0x110000 - 0x800)) << compared.summary;  // every scalar value, twice
  expect_no_mismatch(compared.code_point);
}

}  // namespace
}  // namespace t6
