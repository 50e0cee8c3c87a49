// The GPT-2 BPE tokenizer against gpt-tokenizer's own test plans, tiktoken's token count of
// tinyshakespeare, and round trips on arbitrary bytes (test_tiktoken_reference compares it with the
// real tiktoken on all of Unicode).
// ctest-labels: data
// ctest-timeout: 120
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "common/test_paths.h"
#include "core/build_paths.h"
#include "core/error.h"
#include "data/bpe_merge.h"
#include "data/pretokenizer.h"
#include "data/sha256.h"
#include "data/tokenizer.h"
#include "data/unicode_classes.h"

namespace t6 {
namespace {

using testing::scratch_dir;
using testing::source_dir;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

const Tokenizer& tokenizer() {
  static const Tokenizer loaded = Tokenizer::load(resolve_tokenizer_path(""));
  return loaded;
}

std::string utf8(std::u32string_view code_points) {
  std::string out;
  for (char32_t cp : code_points) append_utf8(out, uint32_t(cp));
  return out;
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Tokenizer, VocabularyOfR50kBase) {
  EXPECT_EQ(tokenizer().vocab_size(), 50257);
  EXPECT_EQ(tokenizer().eot_id(), 50256u);
  EXPECT_EQ(tokenizer().decode({50256}), "<|endoftext|>");
}

// gpt-tokenizer 4.0.0's data/TestPlans.txt, fetched next to the tokenizer file by the set-up command.
TEST(Tokenizer, AllR50kBaseTestPlansOfGptTokenizer) {
  const auto plans_path = source_dir() / "data_tools/cache/TestPlans.txt";
  ASSERT_TRUE(std::filesystem::exists(plans_path)) << plans_path << " is missing: run data_tools/fetch_tokenizer.sh";
  const std::string plans = read_file(plans_path);
  int cases = 0;
  size_t at = 0;
  while (at < plans.size()) {
    size_t end = plans.find("\n\n", at);
    if (end == std::string::npos) end = plans.size();
    std::istringstream plan(plans.substr(at, end - at));
    at = end + 2;
    std::string name_line, sample_line, encoded_line;
    if (!std::getline(plan, name_line) || !std::getline(plan, sample_line) || !std::getline(plan, encoded_line)) continue;
    if (name_line != "EncodingName: r50k_base") continue;
    ASSERT_EQ(sample_line.rfind("Sample: ", 0), 0u);
    const std::string sample = sample_line.substr(8);
    std::vector<uint32_t> expected;
    std::istringstream numbers(encoded_line.substr(encoded_line.find('[') + 1));
    for (uint32_t id; numbers >> id;) {
      expected.push_back(id);
      numbers.ignore(1);
    }
    EXPECT_EQ(tokenizer().encode(sample), expected) << "sample: " << sample;
    EXPECT_EQ(tokenizer().decode(expected), sample);
    ++cases;
  }
  EXPECT_EQ(cases, 64);
}

// Expected ids from gpt-tokenizer 4.0.0 (node) for whitespace, contractions and special-looking text.
TEST(Tokenizer, HandPickedCasesMatchGptTokenizer) {
  const std::vector<std::pair<std::string, std::vector<uint32_t>>> cases = {
      {"<|endoftext|>", {27, 91, 437, 1659, 5239, 91, 29}},
      {"  \nhello", {220, 220, 198, 31373}},
      {"hello   \n\n  world  ", {31373, 220, 220, 220, 628, 220, 995, 220, 220}},
      {utf8(U"a\u3000\u3000b"), {64, 5099, 222, 5099, 222, 65}},
      {utf8(U"x\u00a0 y"), {87, 1849, 331}},
      {"don't I'll we've THEY'RE 's", {9099, 470, 314, 1183, 356, 1053, 33302, 6, 2200, 705, 82}},
      {utf8(U"123456789 \u0663\u0664 \u00bd"), {10163, 2231, 3134, 4531, 18923, 96, 149, 97, 25208}},
      {"\t\tindent\n\tx", {197, 197, 521, 298, 198, 197, 87}},
      {utf8(U"e\u0301t\u00e9"), {68, 136, 223, 83, 2634}},
      {"   ", {220, 220, 220}},
      {"!!!'s", {10185, 6, 82}},
  };
  for (const auto& [text, expected] : cases) EXPECT_EQ(tokenizer().encode(text), expected) << text;
}

TEST(Tokenizer, TinyShakespeareHasTiktokensTokenCount) {
  const std::string text = read_file(source_dir() / "data_tools/corpora/tinyshakespeare.txt");
  ASSERT_EQ(text.size(), 1115394u);
  const std::vector<uint32_t> ids = tokenizer().encode(text);
  EXPECT_EQ(ids.size(), 338025u);
  EXPECT_EQ(tokenizer().decode(ids), text);
}

std::vector<std::string> split_with_pretokenizer(std::string_view text) {
  std::vector<std::string> pieces;
  for_each_pretoken(text, [&](std::string_view piece) { pieces.emplace_back(piece); });
  return pieces;
}

TEST(Pretokenizer, InvalidUtf8BytesJoinPunctuationRuns) {
  using Pieces = std::vector<std::string>;
  EXPECT_EQ(split_with_pretokenizer("a\xff!b"), (Pieces{"a", "\xff!", "b"}));
  EXPECT_EQ(split_with_pretokenizer(" \x80xyz"), (Pieces{" \x80", "xyz"}));
  EXPECT_EQ(split_with_pretokenizer("\xe4\xb8 x"), (Pieces{"\xe4\xb8", " x"}));        // truncated 中
  EXPECT_EQ(split_with_pretokenizer("\xed\xa0\x80!"), (Pieces{"\xed\xa0\x80!"}));     // a surrogate
  EXPECT_EQ(split_with_pretokenizer("\xc0\xaf" "7"), (Pieces{"\xc0\xaf", "7"}));      // overlong '/'
  EXPECT_EQ(split_with_pretokenizer("\xe4\xb8\xad\xff"), (Pieces{"\xe4\xb8\xad", "\xff"}));
}

void expect_round_trip(const std::string& text) {
  ASSERT_EQ(tokenizer().decode(tokenizer().encode(text)), text) << "length " << text.size();
}

TEST(Tokenizer, RoundTripsRandomBytes) {
  std::mt19937 random(7);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes(random() % 300, '\0');
    for (char& byte : bytes) byte = char(random());
    expect_round_trip(bytes);
  }
}

TEST(Tokenizer, RoundTripsRandomUnicode) {
  std::mt19937 random(8);
  for (int trial = 0; trial < 300; ++trial) {
    std::u32string code_points(random() % 100, U' ');
    for (auto& cp : code_points) {
      do cp = char32_t(random() % (random() % 2 ? 0x800 : 0x110000));
      while (cp >= 0xD800 && cp <= 0xDFFF);
    }
    expect_round_trip(utf8(code_points));
  }
}

TEST(Tokenizer, RoundTripsLongRuns) {
  expect_round_trip(std::string(20000, ' '));
  expect_round_trip(std::string(5000, '\n') + "x" + std::string(3000, '\t'));
  std::string mixed_whitespace;
  for (int i = 0; i < 4000; ++i) mixed_whitespace += " \t\n\r"[i % 4];
  expect_round_trip(mixed_whitespace + "end");
  expect_round_trip(std::string(10000, 'a'));
  expect_round_trip(utf8(std::u32string(3000, U'\u3000')));
}

// The heap merge (long pieces) must give what the scan (tiktoken's algorithm) gives.
TEST(BpeMerge, HeapAndScanAgree) {
  BpeRanks ranks;
  for (uint32_t id = 0; id < tokenizer().eot_id(); ++id) ranks.add(tokenizer().decode({id}), id);
  ranks.finish();
  std::mt19937 random(9);
  const std::string letters = "aeiou rstlnhx";
  for (int trial = 0; trial < 200; ++trial) {
    std::string piece(1 + random() % 400, ' ');
    for (char& c : piece) c = letters[random() % (trial % 2 ? 3 : letters.size())];
    std::vector<uint32_t> by_scan, by_heap;
    bpe_merge_scan(ranks, piece, by_scan);
    bpe_merge_heap(ranks, piece, by_heap);
    ASSERT_EQ(by_scan, by_heap) << piece;
  }
}

TEST(Tokenizer, RefusesAFileWithAnotherHash) {
  const auto path = scratch_dir("tokenizer") / "r50k_base.tiktoken";
  std::string contents = read_file(resolve_tokenizer_path(""));
  contents[100] ^= 1;
  std::ofstream(path, std::ios::binary) << contents;
  try {
    Tokenizer::load(path.string());
    FAIL() << "a tampered tokenizer file was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("SHA-256"), std::string::npos) << error.what();
  }
}

TEST(Tokenizer, PathLookupOrder) {
  unsetenv("T6_TOKENIZER");
  EXPECT_EQ(resolve_tokenizer_path(""), default_tokenizer_path().string());
  setenv("T6_TOKENIZER", "/from/environment", 1);
  EXPECT_EQ(resolve_tokenizer_path(""), "/from/environment");
  EXPECT_EQ(resolve_tokenizer_path("/from/flag"), "/from/flag");
  unsetenv("T6_TOKENIZER");
}

}  // namespace
}  // namespace t6
