// Tokenizer throughput: t6's r50k_base encoder on a text file (tinyshakespeare unless --input), one
// thread and all threads, next to the npm encoders run by node on the same file in the same run, one
// thread each: the native tiktoken-rs, tiktoken's core as WASM and gpt-tokenizer
// (data_tools/fetch_node_packages.sh installs them). ratio is t6 over tiktoken-rs, one thread each.
//   build/bin/bench_tokenizer [--input FILE] [--repeats N]
// Prints: RESULT bench_tokenizer t6_mb_s=... t6_mb_s_all_threads=... tiktoken_rs_mb_s=... ratio=...
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/build_paths.h"
#include "data/tokenizer.h"

namespace {

namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best of `repeats` single-thread passes, each with a fresh cache (as a new preprocessor thread has).
double single_thread_mb_s(const t6::Tokenizer& tokenizer, const std::string& text, int repeats, size_t& tokens) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    t6::BpeCache cache;
    std::vector<uint32_t> ids;
    const auto start = std::chrono::steady_clock::now();
    tokenizer.encode(text, cache, ids);
    best = std::min(best, seconds_since(start));
    tokens = ids.size();
  }
  return double(text.size()) / 1e6 / best;
}

// All threads: `copies` copies of the text, cut into 256 KB pieces on line ends, one cache per thread.
double all_threads_mb_s(const t6::Tokenizer& tokenizer, const std::string& text, int copies) {
  std::vector<std::string_view> pieces;
  for (int c = 0; c < copies; ++c) {
    size_t at = 0;
    while (at < text.size()) {
      size_t end = text.find('\n', std::min(text.size(), at + (size_t(256) << 10)));
      end = end == std::string::npos ? text.size() : end + 1;
      pieces.push_back(std::string_view(text).substr(at, end - at));
      at = end;
    }
  }
  std::vector<t6::BpeCache> caches(static_cast<size_t>(omp_get_max_threads()));
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < pieces.size(); ++i) {
    std::vector<uint32_t> ids;
    tokenizer.encode(pieces[i], caches[size_t(omp_get_thread_num())], ids);
  }
  return double(text.size()) * copies / 1e6 / seconds_since(start);
}

struct NodeEncoder {
  double mb_s = 0.0;
  long tokens = -1;
};

// Runs bench_tokenizer_node.js: each npm encoder's MB/s and token count, by name (empty if node fails).
std::map<std::string, NodeEncoder> node_encoders(const fs::path& file, int repeats) {
  const std::string command = "node " + (t6::build_source_dir() / "bench/bench_tokenizer_node.js").string() + " " +
                              (t6::build_source_dir() / "data_tools/cache/node_modules").string() + " " +
                              file.string() + " " + std::to_string(repeats);
  std::map<std::string, NodeEncoder> encoders;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return encoders;
  char name[64];
  NodeEncoder encoder;
  while (std::fscanf(pipe, "%63s mb_s=%lf tokens=%ld", name, &encoder.mb_s, &encoder.tokens) == 3)
    encoders[name] = encoder;
  pclose(pipe);
  return encoders;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"GPT-2 BPE encode throughput of t6's tokenizer, next to tiktoken-rs, tiktoken (WASM) and gpt-tokenizer"};
  std::string input_path = (t6::build_source_dir() / "data_tools/corpora/tinyshakespeare.txt").string();
  int repeats = 5;
  app.add_option("--input", input_path, "text file to encode")->capture_default_str()->check(CLI::ExistingFile);
  app.add_option("--repeats", repeats, "single-thread passes (the best is reported)")->capture_default_str()->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  const fs::path file = input_path;
  std::ifstream input(file, std::ios::binary);
  std::stringstream contents;
  contents << input.rdbuf();
  const std::string text = contents.str();
  const t6::Tokenizer tokenizer = t6::Tokenizer::load(t6::resolve_tokenizer_path(""));

  size_t t6_tokens = 0;
  const double t6_single = single_thread_mb_s(tokenizer, text, repeats, t6_tokens);
  const int threads = omp_get_max_threads();
  const double t6_all = all_threads_mb_s(tokenizer, text, 4 * threads);
  const std::map<std::string, NodeEncoder> encoders = node_encoders(file, repeats);
  std::printf("%s: %.2f MB, t6 %zu tokens, %d threads\n", file.filename().string().c_str(),
              double(text.size()) / 1e6, t6_tokens, threads);
  std::string reference_fields;
  bool tokens_match = true;
  for (const auto& [name, encoder] : encoders) {
    std::printf("  %-14s %8.2f MB/s, %ld tokens\n", name.c_str(), encoder.mb_s, encoder.tokens);
    char field[96];
    std::snprintf(field, sizeof field, " %s_mb_s=%.2f", name.c_str(), encoder.mb_s);
    reference_fields += field;
    tokens_match = tokens_match && encoder.tokens == long(t6_tokens);
  }
  const auto native = encoders.find("tiktoken_rs");
  const double ratio = native != encoders.end() && native->second.mb_s > 0 ? t6_single / native->second.mb_s : 0.0;
  std::printf("RESULT bench_tokenizer t6_mb_s=%.2f t6_mb_s_all_threads=%.2f threads=%d%s ratio=%.2f tokens_match=%d\n",
              t6_single, t6_all, threads, reference_fields.c_str(), ratio, int(tokens_match && !encoders.empty()));
  return 0;
}
