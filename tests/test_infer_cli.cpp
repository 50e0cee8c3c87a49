// ctest-labels: infer
// ctest-timeout: 300
// Bad input to t6_generate and t6_eval, through the built tools: a missing checkpoint, a damaged
// one (a flipped bit in a shard, a truncated safetensors file), a model whose vocabulary is smaller
// than the tokenizer's, a prompt longer than --max-context, a cache over --memory-budget, a task
// file with an unknown or a missing field, a corpus directory that does not exist and one without a
// val split, and --backend cuda without a GPU each end the tool with exit code 1 and exactly one
// line, "<tool>: error: ...", naming the file, option or field (no crash, no hang, nothing on stdout).
// Where there is a GPU, --backend cuda decodes the CPU's greedy tokens. The model: a tiny T6 of random weights with GPT-2's
// padded vocabulary, imported as a checkpoint.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "common/command.h"
#include "common/file_damage.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "kernels/device.h"
#include "model/model_weights.h"
#include "train_state/state_dict.h"

using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

class InferCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workdir_ = scratch_dir("infer_cli");
    t6::ModelConfig config = fixture_model_config(t6::ModelKind::T6);
    config.vocab_size = 50304;
    t6::ModelWeights weights(config, 0, 1, 1, false);
    weights.initialise(1);
    const fs::path model = workdir_ / "model.safetensors";
    t6::save_state_dict(model.string(), weights, t6::DType::F32);
    checkpoints_ = workdir_ / "checkpoints";
    const CommandResult result = run_command(tool("t6_ckpt") + " import " + model.string() + " " + checkpoints_.string());
    ASSERT_EQ(result.exit_code, 0) << result.output;
  }

  static std::string tool(const std::string& name) { return (bin_dir() / name).string(); }
  static fs::path fixture() { return fixture_dir() / "t6_tiny.safetensors"; }  // vocabulary 128

  // The imported checkpoint's step directory, copied so that it can be damaged.
  static fs::path copy_of_step(const std::string& name) {
    const fs::path copy = workdir_ / name;
    fs::copy(checkpoints_ / "step_00000000", copy, fs::copy_options::recursive);
    return copy;
  }

  static void expect_one_error_line(const std::string& tool_name, const std::string& arguments,
                                    const std::vector<std::string>& mentions) {
    const CommandResult result = run_command(tool(tool_name) + " " + arguments, 120);
    EXPECT_EQ(result.exit_code, 1) << arguments << "\n" << result.output;
    EXPECT_EQ(result.output.rfind(tool_name + ": error: ", 0), 0u) << result.output;
    EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
    for (const std::string& part : mentions)
      EXPECT_NE(result.output.find(part), std::string::npos) << "'" << part << "' not in: " << result.output;
  }

  static fs::path write_file(const std::string& name, const std::string& text) {
    const fs::path path = workdir_ / name;
    std::ofstream(path) << text;
    return path;
  }

  static inline fs::path workdir_, checkpoints_;
};

TEST_F(InferCli, GenerateNamesAMissingCheckpoint) {
  const std::string missing = (workdir_ / "no_such_run").string();
  expect_one_error_line("t6_generate", "--checkpoint " + missing + " --prompt hi", {missing});
}

TEST_F(InferCli, GenerateNamesTheDamagedShardOfACheckpoint) {
  const fs::path damaged = copy_of_step("flipped_step");
  flip_bits(damaged / "shard_tp0_dp0.h5", fs::file_size(damaged / "shard_tp0_dp0.h5") / 2);
  expect_one_error_line("t6_generate", "--checkpoint " + damaged.string() + " --prompt hi --max-new-tokens 2",
                        {"shard_tp0_dp0.h5"});
}

TEST_F(InferCli, GenerateNamesATruncatedSafetensorsFile) {
  const fs::path truncated = workdir_ / "truncated.safetensors";
  fs::copy_file(fixture(), truncated);
  fs::resize_file(truncated, fs::file_size(truncated) / 2);
  expect_one_error_line("t6_generate", "--checkpoint " + truncated.string() + " --prompt hi --max-new-tokens 2",
                        {truncated.string()});
}

TEST_F(InferCli, GenerateRefusesAModelWithASmallerVocabularyThanTheTokenizer) {
  expect_one_error_line("t6_generate", "--checkpoint " + fixture().string() + " --prompt hi",
                        {fixture().string(), "128 tokens", "50257"});
}

TEST_F(InferCli, GenerateRefusesAPromptLongerThanTheContext) {
  expect_one_error_line("t6_generate",
                        "--checkpoint " + checkpoints_.string() +
                            " --max-context 8 --max-new-tokens 2 --prompt 'a prompt of many more tokens than eight'",
                        {"prompt 0", "--max-context 8"});
}

TEST_F(InferCli, GenerateRefusesACacheOverTheMemoryBudget) {
  expect_one_error_line("t6_generate",
                        "--checkpoint " + checkpoints_.string() + " --max-context 1000000 --memory-budget 1MiB --prompt hi",
                        {"--memory-budget 1.00 MiB", "--max-context"});
}

// --backend cuda decodes on the GPU where there is one (the emulated one in the emulated build) and
// gives the CPU's greedy tokens; without one it is one line saying so.
TEST_F(InferCli, GenerateOnCudaGivesTheCpusGreedyTokensOrSaysThereIsNoGpu) {
  const std::string arguments = "--checkpoint " + checkpoints_.string() +
                                " --prompt 'To be, or not' --max-new-tokens 12 --temperature 0 --ignore-eot --json --backend ";
  if (t6::cuda_device_count() == 0) {
    expect_one_error_line("t6_generate", arguments + "cuda", {"--backend cuda", "--backend cpu"});
    return;
  }
  std::vector<nlohmann::json> records;
  for (const std::string backend : {"cpu", "cuda"}) {
    const CommandResult result = run_command(tool("t6_generate") + " " + arguments + backend, 120);
    ASSERT_EQ(result.exit_code, 0) << backend << ": " << result.output;
    records.push_back(nlohmann::json::parse(result.output.substr(0, result.output.find('\n'))));  // stderr follows
  }
  EXPECT_EQ(records[1]["ids"].size(), 12u);
  EXPECT_EQ(records[1]["ids"], records[0]["ids"]);
}

TEST_F(InferCli, ChoiceNamesAnUnknownField) {
  const fs::path tasks = write_file("unknown_field.jsonl", R"({"context": "a", "choices": [" b", " c"], "lable": 0})"
                                                           "\n");
  expect_one_error_line("t6_eval", "choice --checkpoint " + checkpoints_.string() + " --tasks " + tasks.string(),
                        {tasks.string() + ":1", "unknown field 'lable'"});
}

TEST_F(InferCli, ChoiceNamesAMissingField) {
  const fs::path tasks = write_file("missing_field.jsonl", R"({"context": "a", "choices": [" b", " c"], "label": 1})"
                                                           "\n"
                                                           R"({"context": "a", "choices": [" b", " c"]})"
                                                           "\n");
  expect_one_error_line("t6_eval", "choice --checkpoint " + checkpoints_.string() + " --tasks " + tasks.string(),
                        {tasks.string() + ":2", "missing field 'label'"});
}

TEST_F(InferCli, PerplexityNamesAMissingDataDirectory) {
  const std::string missing = (workdir_ / "no_such_corpus").string();
  expect_one_error_line("t6_eval",
                        "perplexity --checkpoint " + checkpoints_.string() + " --seq-len 16 --data " + missing,
                        {missing});
}

TEST_F(InferCli, PerplexityOnACorpusWithoutAValSplitSaysSo) {
  // It blamed "--windows 0", a flag the user had not given.
  const fs::path text = write_file("train_only.jsonl", "{\"text\": \"To be, or not to be, that is the question.\"}\n"
                                                       "{\"text\": \"Whether 'tis nobler in the mind to suffer.\"}\n");
  const std::string corpus = (workdir_ / "train_only").string();
  const CommandResult made = run_command(tool("t6_preprocess") + " --input " + text.string() + " --output " + corpus);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  expect_one_error_line("t6_eval", "perplexity --checkpoint " + checkpoints_.string() + " --seq-len 4 --data " + corpus,
                        {corpus, "its val split holds no window of 5 tokens"});
}

TEST_F(InferCli, ChoiceChecksWhereItsJsonGoesBeforeScoring) {
  // The tasks were scored (hours on a real set) and only then was the --json path found unwritable.
  const fs::path tasks = write_file("json_tasks.jsonl", "{\"context\": \"To be or\", \"choices\": [\" not\", \" yes\"], \"label\": 0}\n");
  const std::string choice = "choice --checkpoint " + checkpoints_.string() + " --tasks " + tasks.string() + " --json ";
  expect_one_error_line("t6_eval", choice + (workdir_ / "no_such_dir" / "scores.json").string(), {"no_such_dir", "not a directory"});
  expect_one_error_line("t6_eval", choice + workdir_.string(), {workdir_.string(), "it is a directory"});
  const fs::path scores = workdir_ / "scores.json";
  const CommandResult result = run_command(tool("t6_eval") + " " + choice + scores.string(), 120);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(scores)).at(0).at("examples"), 1);
  EXPECT_FALSE(fs::exists(workdir_ / "scores.json.tmp"));
}

// The spin count libgomp ends up with in a tool, from OMP_DISPLAY_ENV's last report (the tool may
// execute itself again with the passive policy, after the first image's libgomp reported its own).
std::string final_spin_count(const std::string& environment, const std::string& tool_name) {
  const CommandResult result =
      run_command("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose " + environment + " " + (bin_dir() / tool_name).string() + " --help");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  const size_t at = result.output.rfind("GOMP_SPINCOUNT = '");
  if (at == std::string::npos) return "(not reported)";
  const size_t begin = at + 18;
  return result.output.substr(begin, result.output.find('\'', begin) - begin);
}

// Issue 23: spinning waits collapse decoding on shared cores, so the tools wait passively (spin count
// 0) unless the user chose a policy or a spin count, which they keep.
TEST_F(InferCli, ToolsWaitPassivelyUnlessTheUserChoseAPolicy) {
  for (const char* name : {"t6_generate", "t6_eval", "t6_pretrain"}) {
    EXPECT_EQ(final_spin_count("", name), "0") << name;
    EXPECT_NE(final_spin_count("OMP_WAIT_POLICY=active", name), "0") << name;
    EXPECT_EQ(final_spin_count("GOMP_SPINCOUNT=1000", name), "1000") << name;
  }
}

}  // namespace
