// ctest-timeout: 300
// t6_plot (scripts/t6_plot, copied to build/bin) on real runs, two seeds of a T6 and an MHA model of
// the demo's kind but tiny: it writes a PNG that decodes (signature, IHDR chunk with its CRC, the
// figure's size: three panels, four with --throughput) and an SVG; its summary table, read back,
// holds each config once (the two T6 seeds as one entry), the parameter counts of the models and
// the final and best validation losses of metrics.jsonl; a run directory without metrics is one
// clear error.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>
#include <zlib.h>

#include "common/command.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "model/model_config.h"

using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

uint32_t big_endian(const std::string& bytes, size_t at) {
  return uint32_t(uint8_t(bytes[at])) << 24 | uint32_t(uint8_t(bytes[at + 1])) << 16 | uint32_t(uint8_t(bytes[at + 2])) << 8 |
         uint32_t(uint8_t(bytes[at + 3]));
}

std::string read_bytes(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// The mean over runs of the last and of the smallest val_loss in each run's metrics.jsonl.
std::pair<double, double> final_and_best_val(const std::vector<fs::path>& runs) {
  double final_sum = 0, best_sum = 0;
  for (const fs::path& run : runs) {
    std::ifstream metrics(run / "metrics.jsonl");
    std::string line;
    double last = 0, best = 1e30;
    while (std::getline(metrics, line)) {
      const auto record = nlohmann::json::parse(line);
      if (!record.contains("val_loss")) continue;
      last = record["val_loss"].get<double>();
      best = std::min(best, last);
    }
    final_sum += last, best_sum += best;
  }
  return {final_sum / double(runs.size()), best_sum / double(runs.size())};
}

// The summary table's line for the entry headed by `run` (its directory, as t6_plot prints it).
std::vector<std::string> summary_row(const std::string& output, const fs::path& run) {
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream cells(line);
    std::vector<std::string> row{std::istream_iterator<std::string>(cells), std::istream_iterator<std::string>()};
    if (!row.empty() && row[0] == run.string()) return row;
  }
  return {};
}

std::string fixed4(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", value);
  return text;
}

}  // namespace

TEST(T6Plot, TwoRunsSideBySideMakeAPngAndAnSvg) {
  const fs::path dir = scratch_dir("t6_plot");
  const std::string corpus = write_shakespeare_corpus((dir / "corpus").string());
  const fs::path config = dir / "tiny.toml";
  std::ofstream(config) << "[model]\nkind = \"T6\"\nn_layer = 2\nn_embd = 64\nn_head = 4\nhead_dim = 16\nvocab_size = 50304\n"
                           "[train]\nseq_len = 32\nmicro_batch_size = 4\nglobal_batch_size = 4\nmax_steps = 8\n"
                           "lr = 3e-3\nmin_lr = 3e-4\nwarmup_steps = 2\n[data]\npath = \"" << corpus << "\"\n"
                           "[parallel]\nthreads = 1\n[eval]\ninterval = 4\nbatches = 1\n[log]\ninterval = 4\n";
  // Two seeds of the T6 config (one entry, drawn as a band) and the MHA model.
  const std::vector<std::pair<std::string, std::string>> runs = {
      {"T6", "--set train.seed=1"}, {"T6_seed2", "--set train.seed=2"}, {"llama_mha", "--set model.kind=llama_mha"}};
  for (const auto& [name, settings] : runs) {
    const CommandResult run = run_command((bin_dir() / "t6_pretrain").string() + " --config " + config.string() +
                                          " --run-dir " + (dir / name).string() + " " + settings);
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  const fs::path png = dir / "curves.png";
  const std::string plot = (bin_dir() / "t6_plot").string() + " " + (dir / "T6").string() + " " +
                           (dir / "llama_mha").string() + " " + (dir / "T6_seed2").string();
  const CommandResult drawn = run_command(plot + " --out " + png.string() + " --smooth 3");
  ASSERT_EQ(drawn.exit_code, 0) << drawn.output;

  // The summary, read back: one row per config, parameters and validation losses from the runs.
  t6::ModelConfig t6_model;
  t6_model.n_layer = 2, t6_model.n_embd = 64, t6_model.n_head = 4, t6_model.head_dim = 16;
  t6::ModelConfig mha_model = t6_model;
  mha_model.kind = t6::ModelKind::llama_mha;
  for (const auto& [run, model, seeds] : std::vector<std::tuple<fs::path, t6::ModelConfig, std::vector<fs::path>>>{
           {dir / "T6", t6_model, {dir / "T6", dir / "T6_seed2"}}, {dir / "llama_mha", mha_model, {dir / "llama_mha"}}}) {
    const std::vector<std::string> row = summary_row(drawn.output, run);
    ASSERT_EQ(row.size(), 10u) << drawn.output;  // run, params, seeds, steps, tokens, train, final, best, (step), windows
    char params[32];
    std::snprintf(params, sizeof params, "%.2fM", double(model.parameter_count()) / 1e6);
    EXPECT_EQ(row[1], params) << drawn.output;
    EXPECT_EQ(row[2], std::to_string(seeds.size())) << drawn.output;
    EXPECT_EQ(row[3], "8") << drawn.output;
    EXPECT_EQ(row[4], std::to_string(8 * 4 * 32)) << drawn.output;
    const auto [final_val, best_val] = final_and_best_val(seeds);
    EXPECT_EQ(row[6], fixed4(final_val)) << drawn.output;
    EXPECT_EQ(row[7], fixed4(best_val)) << drawn.output;
    EXPECT_EQ(row[9], "4") << "windows of each validation pass: eval.batches × global batch" << drawn.output;
  }
  EXPECT_TRUE(summary_row(drawn.output, dir / "T6_seed2").empty()) << "the second seed is part of T6's entry";

  const std::string bytes = read_bytes(png);
  ASSERT_GT(bytes.size(), 20'000u) << "a 4-panel figure with curves is not this small";
  EXPECT_LT(bytes.size(), 2'000'000u);
  ASSERT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  // The first chunk is IHDR: length 13, then width and height, and a CRC over type and data.
  ASSERT_EQ(big_endian(bytes, 8), 13u);
  ASSERT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian(bytes, 16), 1500u);  // three 5 x 5 inch panels at 100 dpi
  EXPECT_EQ(big_endian(bytes, 20), 500u);
  const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + 12), 17));
  EXPECT_EQ(big_endian(bytes, 29), crc);
  EXPECT_NE(bytes.find("IEND"), std::string::npos);

  const fs::path with_throughput = dir / "throughput.png";
  ASSERT_EQ(run_command(plot + " --throughput --y log --out " + with_throughput.string()).exit_code, 0);
  EXPECT_EQ(big_endian(read_bytes(with_throughput), 16), 2000u) << "a fourth panel only when asked";

  const fs::path svg = dir / "curves.svg";
  ASSERT_EQ(run_command(plot + " --x tokens --out " + svg.string()).exit_code, 0);
  const std::string text = read_bytes(svg);
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("llama_mha"), std::string::npos) << "runs are labelled by their directory";

  const CommandResult missing = run_command((bin_dir() / "t6_plot").string() + " " + (dir / "nowhere").string());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nowhere: no metrics.jsonl"), std::string::npos) << missing.output;
}
