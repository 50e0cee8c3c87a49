// ctest-timeout: 300
// t6_ckpt end to end, through the built tool: importing a fixture gives a checkpoint whose weights
// reproduce the fixture's logits; export then import gives identical weights under the reference
// names (T6 and MLA), and the official llama-mla.py loads the MLA export strictly and computes the
// fixture's logits from it (skipped without python3-torch or ../shared/anchors); a reshard to TP2 × DP2
// ZeRO-1 holds the same weights and moments; verify passes a whole checkpoint and fails, naming the
// file, on a truncated shard, a flipped bit and a manifest whose training state or model config
// resume refuses; inspect prints the tensor table; bad input exits 1
// with one "t6_ckpt: error:" line; a failed reshard or import (full disk, a destination holding a
// newer checkpoint) leaves nothing behind and the destination as it was.
#include <gtest/gtest.h>

#include <cmath>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_reader.h"
#include "train_state/reshard.h"
#include "checkpoint/safetensors.h"
#include "train_state/state_dict.h"
#include "common/file_damage.h"
#include "common/test_paths.h"
#include "model/language_model.h"
#include "train_state/train_checkpoint.h"

using namespace t6;
using namespace t6::checkpoint;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

struct ToolResult {
  int exit_code;
  std::string out, err;
};

std::string read_text(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

ToolResult t6_ckpt(const std::string& arguments) {
  static const fs::path scratch = scratch_dir("t6_ckpt_output");
  const std::string command = str((t6::testing::bin_dir() / "t6_ckpt").string(), " ", arguments, " >", (scratch / "out").string(), " 2>",
                                  (scratch / "err").string());
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(scratch / "out"), read_text(scratch / "err")};
}

void expect_one_error_line(const ToolResult& result, const std::string& mentions) {
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_EQ(result.err.rfind("t6_ckpt: error: ", 0), 0u) << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_NE(result.err.find(mentions), std::string::npos) << result.err;
}

const fs::path fixture = fixture_dir() / "t6_tiny.safetensors";
const fs::path mla_fixture = fixture_dir() / "mla_tiny.safetensors";

// A checkpoints directory holding a fixture's weights at step 0 (imported once per fixture).
const fs::path& imported(const fs::path& source = fixture) {
  static std::map<fs::path, fs::path> dirs;
  auto [entry, added] = dirs.try_emplace(source);
  if (added) {
    entry->second = scratch_dir("imported") / "checkpoints";
    const ToolResult result = t6_ckpt(str("import ", source.string(), " ", entry->second.string()));
    EXPECT_EQ(result.exit_code, 0) << result.err;
  }
  return entry->second;
}

struct Loaded {
  std::unique_ptr<ModelWeights> weights;
  std::vector<float> first_moment, second_moment;
};

// The whole model (TP1, one rank) and its moments, read from any checkpoint layout.
Loaded load(const fs::path& path) {
  const ResumePoint point = open_checkpoint_path(path, ChecksumCheck::verify);
  Loaded loaded{std::make_unique<ModelWeights>(model_config_of(point.manifest, point.dir), 0, 1), {}, {}};
  const int64_t numel = loaded.weights->table().local_numel();
  loaded.first_moment.resize(size_t(numel));
  loaded.second_moment.resize(size_t(numel));
  CheckpointReader reader(point.dir, point.manifest);
  read_rank_tensors(reader, *loaded.weights,
                    {Tensor(loaded.first_moment.data(), {numel}, DType::F32),
                     Tensor(loaded.second_moment.data(), {numel}, DType::F32), 0, numel});
  return loaded;
}

std::vector<float> params_of(const Loaded& loaded) {
  const Tensor params = loaded.weights->params();
  return {params.data<float>(), params.data<float>() + params.numel()};
}

void expect_import_reproduces_logits(const fs::path& source) {
  const SafetensorsReader file(source.string());
  const Loaded loaded = load(imported(source));
  const ModelConfig& config = loaded.weights->config();
  const int64_t batch = std::stoll(file.metadata().at("batch")), seq_len = std::stoll(file.metadata().at("seq_len"));
  LanguageModel model(config, batch, seq_len);
  std::copy_n(loaded.weights->params().data<float>(), loaded.weights->params().numel(),
              model.weights().params().data<float>());
  std::vector<int32_t> inputs = file.read_i32("input.idx");
  const std::vector<float> expected = file.read_f32("out.logits");
  std::vector<float> logits(expected.size());
  model.forward_logits(Tensor(inputs.data(), {batch, seq_len}, DType::I32),
                       Tensor(logits.data(), {batch, seq_len, config.vocab_size}, DType::F32));
  double largest = 0, worst = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    largest = std::max(largest, std::fabs(double(expected[i])));
    worst = std::max(worst, std::fabs(double(logits[i]) - double(expected[i])));
  }
  EXPECT_LE(worst, 1e-5 * largest);
  EXPECT_EQ(loaded.first_moment, std::vector<float>(loaded.first_moment.size(), 0.0f));  // fresh AdamW
}

TEST(T6Ckpt, ImportedFixtureReproducesItsLogits) { expect_import_reproduces_logits(fixture); }
TEST(T6Ckpt, ImportedMlaFixtureReproducesItsLogits) { expect_import_reproduces_logits(mla_fixture); }

// Exports the fixture's imported checkpoint; returns the export's path.
fs::path export_of(const fs::path& source, const std::string& label) {
  const fs::path path = scratch_dir(label) / "model.safetensors";
  const ToolResult result = t6_ckpt(str("export ", imported(source).string(), " ", path.string()));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return path;
}

// The export holds exactly the reference state_dict's names (the fixture's parameters and the tied
// lm_head.weight), and importing it back gives the same weights bit for bit.
void expect_round_trip(const fs::path& source) {
  const fs::path exported_path = export_of(source, "round_trip");
  std::set<std::string> expected_names = {"lm_head.weight"}, names;
  const SafetensorsReader reference(source.string()), exported(exported_path.string());
  for (const auto& [name, entry] : reference.entries())
    if (name.rfind("param.", 0) == 0) expected_names.insert(name.substr(6));
  for (const auto& [name, entry] : exported.entries()) names.insert(name);
  EXPECT_EQ(names, expected_names);
  const fs::path checkpoints = exported_path.parent_path() / "checkpoints";
  ASSERT_EQ(t6_ckpt(str("import ", exported_path.string(), " ", checkpoints.string())).exit_code, 0);
  EXPECT_EQ(params_of(load(checkpoints)), params_of(load(imported(source))));
}

TEST(T6Ckpt, ExportThenImportGivesIdenticalWeights) { expect_round_trip(fixture); }
TEST(T6Ckpt, MlaExportThenImportGivesIdenticalWeights) { expect_round_trip(mla_fixture); }

// A python3 that has torch (Debian's python3-torch is under /usr/bin, which a pyenv python3 hides), or "".
std::string python_with_torch() {
  for (const std::string candidate : {"python3", "/usr/bin/python3"})
    if (std::system((candidate + " -c 'import torch' > /dev/null 2>&1").c_str()) == 0) return candidate;
  return "";
}

// The official llama-mla.py (../shared/anchors) loads the export with load_state_dict(strict=True)
// and computes the fixture's logits from it.
TEST(T6Ckpt, MlaExportLoadsStrictlyIntoTheOfficialModel) {
  const fs::path model_file = source_dir() / ".." / "shared" / "anchors" / "llama_mla.py";
  if (!fs::exists(model_file)) GTEST_SKIP() << "the official model is not at " << model_file;
  const std::string python = python_with_torch();
  if (python.empty()) GTEST_SKIP() << "python3 with torch is not installed (Debian: python3-torch)";
  const fs::path exported = export_of(mla_fixture, "official_load");
  const fs::path output = exported.parent_path() / "reference.out";
  const std::string command = str(python, " ", (source_dir() / "tests" / "reference_logits.py").string(), " ",
                                  model_file.string(), " ", exported.string(), " ", mla_fixture.string(), " > ",
                                  output.string(), " 2>&1");
  const int status = std::system(command.c_str());
  const std::string text = read_text(output);
  ASSERT_EQ(status, 0) << text;
  double max_abs_diff = -1, largest = -1;
  ASSERT_EQ(std::sscanf(text.c_str(), "max_abs_diff=%lf largest=%lf", &max_abs_diff, &largest), 2) << text;
  EXPECT_GT(largest, 0.0);
  EXPECT_LE(max_abs_diff, 1e-5 * largest) << text;
}

TEST(T6Ckpt, ReshardKeepsWeightsAndMoments) {
  const fs::path destination = scratch_dir("resharded") / "checkpoints";
  const ToolResult result = t6_ckpt(str("reshard ", imported().string(), " ", destination.string(), " --tp 2 --dp 2 --zero1"));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const ResumePoint point = open_checkpoint_path(destination, ChecksumCheck::verify);
  EXPECT_EQ(point.manifest.layout, (CheckpointLayout{2, 2, true}));
  EXPECT_EQ(point.manifest.shards.size(), 4u);
  const Loaded original = load(imported()), resharded = load(destination);
  EXPECT_EQ(params_of(resharded), params_of(original));
  EXPECT_EQ(resharded.second_moment, original.second_moment);
}

// A copy of the imported step directory, to damage.
fs::path copy_of_checkpoint(const std::string& label) {
  const fs::path dir = scratch_dir(label) / step_dir_name(0);
  fs::copy(imported() / step_dir_name(0), dir, fs::copy_options::recursive);
  return dir;
}

TEST(T6Ckpt, VerifyPassesAWholeCheckpointAndNamesDamagedFiles) {
  EXPECT_EQ(t6_ckpt("verify " + imported().string()).exit_code, 0);

  const fs::path truncated = copy_of_checkpoint("truncated");
  fs::resize_file(truncated / "shard_tp0_dp0.h5", fs::file_size(truncated / "shard_tp0_dp0.h5") / 2);
  ToolResult result = t6_ckpt("verify " + truncated.string());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("shard_tp0_dp0.h5"), std::string::npos) << result.err;

  const fs::path flipped = copy_of_checkpoint("flipped");
  t6::testing::flip_bits(flipped / "shard_tp0_dp0.h5", fs::file_size(flipped / "shard_tp0_dp0.h5") / 2);
  result = t6_ckpt("verify " + flipped.string());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("shard_tp0_dp0.h5"), std::string::npos) << result.err;

  // Whole files, but a manifest that resume refuses: verify said "complete" before.
  for (const auto& [key, value, expected] :
       {std::tuple<const char*, nlohmann::json, const char*>{"adam_steps", -1, "adam_steps -1 is not in [0, 0]"},
        {"kind", "llama_mha", "the manifest's model config is invalid"}}) {
    const fs::path edited = copy_of_checkpoint("edited");
    nlohmann::json manifest = nlohmann::json::parse(std::ifstream(edited / "manifest.json"));
    (std::string(key) == "kind" ? manifest["config"]["model"] : manifest["state"])[key] = value;
    std::ofstream(edited / "manifest.json") << manifest.dump();
    expect_one_error_line(t6_ckpt("verify " + edited.string()), expected);
  }
}

TEST(T6Ckpt, InspectPrintsTheTensorTable) {
  const ToolResult result = t6_ckpt("inspect " + imported().string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("step        0"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("TP 1 × DP 1"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("adam_v/transformer.wte.weight"), std::string::npos) << result.out;
}

TEST(T6Ckpt, BadInputExitsOneWithOneLine) {
  expect_one_error_line(t6_ckpt("inspect /nonexistent/checkpoints"), "/nonexistent/checkpoints");
  const fs::path no_manifest = copy_of_checkpoint("no_manifest");
  fs::remove(no_manifest / "manifest.json");
  expect_one_error_line(t6_ckpt("inspect " + no_manifest.string()), "no manifest.json");
  const fs::path missing_shard = copy_of_checkpoint("missing_shard");
  fs::remove(missing_shard / "shard_tp0_dp0.h5");
  expect_one_error_line(t6_ckpt("export " + missing_shard.string() + " " + (missing_shard / "x.safetensors").string()),
                        "shard_tp0_dp0.h5");
  expect_one_error_line(t6_ckpt("reshard " + imported().string() + " " + imported().string() + " --tp 1 --dp 1"),
                        "exists already");
  expect_one_error_line(t6_ckpt("frobnicate"), "subcommand");
  const fs::path latest_dir = scratch_dir("latest_dir") / "checkpoints";
  fs::create_directories(latest_dir / "latest");
  expect_one_error_line(t6_ckpt("inspect " + latest_dir.string()), "latest: is a directory");
}

// A listing of a directory tree (names and sizes), to show that a failed command changed nothing.
std::string tree_of(const fs::path& dir) {
  std::set<std::string> entries;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir))
    entries.insert(str(fs::relative(entry.path(), dir).string(), entry.is_regular_file() ? str(" ", entry.file_size()) : ""));
  std::string listing;
  for (const std::string& entry : entries) listing += entry + "\n";
  return listing;
}

// t6_ckpt with every checkpoint file write failing as on a full disk (the T6_CKPT_DISK_FULL hook).
ToolResult t6_ckpt_on_a_full_disk(const std::string& arguments) {
  setenv("T6_CKPT_DISK_FULL", "1", 1);
  const ToolResult result = t6_ckpt(arguments);
  unsetenv("T6_CKPT_DISK_FULL");
  return result;
}

TEST(T6Ckpt, FailedReshardOrImportLeavesNothingBehind) {
  // A full disk left DST/step_N.tmp-<nonce> behind, and the DST directory created for it.
  const fs::path fresh = scratch_dir("full_disk") / "checkpoints";
  expect_one_error_line(t6_ckpt_on_a_full_disk(str("reshard ", imported().string(), " ", fresh.string(), " --tp 2 --dp 1")),
                        "No space left on device");
  EXPECT_FALSE(fs::exists(fresh));
  expect_one_error_line(t6_ckpt_on_a_full_disk(str("import ", fixture.string(), " ", fresh.string())),
                        "No space left on device");
  EXPECT_FALSE(fs::exists(fresh));

  // Into a checkpoints directory that holds a checkpoint: it stays as it was.
  const fs::path existing = scratch_dir("full_disk_existing") / "checkpoints";
  ASSERT_EQ(t6_ckpt(str("reshard ", imported().string(), " ", existing.string(), " --tp 1 --dp 1")).exit_code, 0);
  const fs::path other = copy_of_checkpoint("other_step");
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(other / "manifest.json"));
  manifest["step"] = manifest["state"]["step"] = 3;
  const fs::path step3 = other.parent_path() / step_dir_name(3);
  fs::rename(other, step3);
  std::ofstream(step3 / "manifest.json") << manifest.dump();
  const std::string before = tree_of(existing);
  expect_one_error_line(t6_ckpt_on_a_full_disk(str("reshard ", step3.string(), " ", existing.string(), " --tp 2 --dp 1")),
                        "No space left on device");
  EXPECT_EQ(tree_of(existing), before);

  // An import (step 0) beside a newer checkpoint would move `latest` back, and resume would still
  // take the newer one: refused, nothing written.
  const fs::path newer = scratch_dir("newer") / "checkpoints";
  ASSERT_EQ(t6_ckpt(str("reshard ", step3.string(), " ", newer.string(), " --tp 1 --dp 1")).exit_code, 0);
  const std::string with_step3 = tree_of(newer);
  expect_one_error_line(t6_ckpt(str("import ", fixture.string(), " ", newer.string())),
                        "holds step_00000003, newer than the step 0 written here");
  EXPECT_EQ(tree_of(newer), with_step3);
  expect_one_error_line(t6_ckpt(str("reshard ", imported().string(), " ", fixture.string(), " --tp 1 --dp 1")),
                        "exists and is not a directory");
}

}  // namespace
