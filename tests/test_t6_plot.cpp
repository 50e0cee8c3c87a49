// ctest-timeout: 300
// t6_plot (scripts/t6_plot, copied to build/bin) on two real runs, a T6 and an MHA model of the
// demo's kind but tiny: it writes a PNG that decodes (signature, IHDR chunk with its CRC, the
// figure's size) and an SVG, and a run directory without metrics is one clear error.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <zlib.h>

#include "common/command.h"
#include "common/test_paths.h"
#include "common/training_setup.h"

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

}  // namespace

TEST(T6Plot, TwoRunsSideBySideMakeAPngAndAnSvg) {
  const fs::path dir = scratch_dir("t6_plot");
  const std::string corpus = write_shakespeare_corpus((dir / "corpus").string());
  const fs::path config = dir / "tiny.toml";
  std::ofstream(config) << "[model]\nkind = \"T6\"\nn_layer = 2\nn_embd = 64\nn_head = 4\nhead_dim = 16\nvocab_size = 50304\n"
                           "[train]\nseq_len = 32\nmicro_batch_size = 4\nglobal_batch_size = 4\nmax_steps = 8\n"
                           "lr = 3e-3\nmin_lr = 3e-4\nwarmup_steps = 2\n[data]\npath = \"" << corpus << "\"\n"
                           "[parallel]\nthreads = 1\n[eval]\ninterval = 4\nbatches = 1\n[log]\ninterval = 4\n";
  for (const char* kind : {"T6", "llama_mha"}) {
    const CommandResult run = run_command((bin_dir() / "t6_pretrain").string() + " --config " + config.string() +
                                          " --run-dir " + (dir / kind).string() + " --set model.kind=" + kind);
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  const fs::path png = dir / "curves.png";
  const std::string plot = (bin_dir() / "t6_plot").string() + " " + (dir / "T6").string() + " " + (dir / "llama_mha").string();
  const CommandResult drawn = run_command(plot + " --out " + png.string() + " --smooth 3");
  ASSERT_EQ(drawn.exit_code, 0) << drawn.output;

  const std::string bytes = read_bytes(png);
  ASSERT_GT(bytes.size(), 20'000u) << "a 4-panel figure with curves is not this small";
  EXPECT_LT(bytes.size(), 2'000'000u);
  ASSERT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  // The first chunk is IHDR: length 13, then width and height, and a CRC over type and data.
  ASSERT_EQ(big_endian(bytes, 8), 13u);
  ASSERT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian(bytes, 16), 1200u);  // 12 x 8 inches at 100 dpi
  EXPECT_EQ(big_endian(bytes, 20), 800u);
  const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + 12), 17));
  EXPECT_EQ(big_endian(bytes, 29), crc);
  EXPECT_NE(bytes.find("IEND"), std::string::npos);

  const fs::path svg = dir / "curves.svg";
  ASSERT_EQ(run_command(plot + " --x tokens --out " + svg.string()).exit_code, 0);
  const std::string text = read_bytes(svg);
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("llama_mha"), std::string::npos) << "runs are labelled by their directory";

  const CommandResult missing = run_command((bin_dir() / "t6_plot").string() + " " + (dir / "nowhere").string());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nowhere: no metrics.jsonl"), std::string::npos) << missing.output;
}
