// ctest-timeout: 120
// Out-of-range and unknown arguments, through the built tools: each is one "TOOL: error:" line that
// names the argument and its valid range (or the known subcommands), a non-zero exit, and nothing
// written. Thread counts are checked against this machine before a thread is started: 100000 once
// crashed t6_preprocess and left an empty output directory behind. And the tools' frame: a failed
// allocation names the command it stopped.
#include <gtest/gtest.h>

#include <filesystem>
#include <new>
#include <string>

#include "apps/tool_main.h"
#include "common/command.h"
#include "common/test_paths.h"
#include "core/cpu_threads.h"

using namespace t6::testing;

namespace {

std::string tool(const std::string& name) { return (bin_dir() / name).string(); }

// The run's output is exactly one line, the error, and the exit code is 1.
void expect_one_error_line(const CommandResult& result, const std::string& expected) {
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_EQ(result.output, expected + "\n");
}

std::string thread_range() {
  return "must be in [1, " + std::to_string(t6::max_cpu_threads()) + "] (8 per core; this machine has " +
         std::to_string(t6::available_cores()) + " cores)";
}

TEST(ToolArguments, ThreadCountsBeyondTheMachineAreErrorsBeforeAnyWork) {
  const std::filesystem::path output = scratch_dir("tool_arguments") / "corpus";
  const std::string corpus = (source_dir() / "data_tools/corpora/tinyshakespeare.txt").string();
  for (const char* threads : {"100000", "99999999999", "0"}) {
    expect_one_error_line(
        run_command(tool("t6_preprocess") + " --threads " + threads + " --input " + corpus + " --output " + output.string() + " 2>&1"),
        std::string("t6_preprocess: error: --threads ") + thread_range() + ", got " + threads);
    EXPECT_FALSE(std::filesystem::exists(output)) << "a refused run left " << output;
  }
  const std::string run_dir = (scratch_dir("tool_arguments") / "run").string();
  const std::string pretrain = tool("t6_pretrain") + " --config " + (source_dir() / "configs/t6-small.toml").string() +
                               " --run-dir " + run_dir + " --set parallel.threads=";
  expect_one_error_line(run_command(pretrain + "100000 2>&1"),
                        "t6_pretrain: error: parallel.threads " + thread_range() + ", got 100000");
  EXPECT_FALSE(std::filesystem::exists(run_dir + "/metrics.jsonl"));
}

TEST(ToolArguments, TensorParallelSizeThatDoesNotFitTheWorldListsTheSizesThatDo) {
  const CommandResult result = run_command(tool("t6_pretrain") + " --config " +
                                           (source_dir() / "configs/t6-small.toml").string() +
                                           " --set parallel.tp=99999999999 2>&1");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("parallel.tp = 99999999999 does not fit the world of 1 ranks: it must divide the world "
                               "size (valid: 1)"),
            std::string::npos)
      << result.output;
}

TEST(ToolArguments, ReshardLayoutOutOfRangeSaysTheRange) {
  for (const char* tp : {"0", "99999999999"})
    expect_one_error_line(run_command(tool("t6_ckpt") + " reshard --tp " + tp + " --dp 1 a b 2>&1"),
                          std::string("t6_ckpt: error: --tp: Value ") + tp + " not in range 1 to 2147483647");
}

TEST(ToolArguments, UnknownSubcommandIsNamedWithTheKnownOnes) {
  expect_one_error_line(run_command(tool("t6_ckpt") + " frobnicate x 2>&1"),
                        "t6_ckpt: error: unknown subcommand 'frobnicate' (one of: inspect, verify, reshard, export, import)");
  expect_one_error_line(run_command(tool("t6_eval") + " perplexit 2>&1"),
                        "t6_eval: error: unknown subcommand 'perplexit' (one of: perplexity, choice)");
}

}  // namespace

// A failed allocation inside a tool names the command it stopped (and so the inputs that asked too
// much), never a bare "std::bad_alloc".
TEST(ToolMain, AFailedAllocationNamesTheCommandItStopped) {
  std::string words[] = {"t6_eval", "--model", "big.safetensors"};
  char* argv[] = {words[0].data(), words[1].data(), words[2].data()};
  ::testing::internal::CaptureStderr();
  const int code = t6::run_tool("t6_eval", 3, argv, [](int, char**) -> int { throw std::bad_alloc(); });
  EXPECT_EQ(code, 1);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "t6_eval: error: out of host memory (std::bad_alloc) running `t6_eval --model big.safetensors`: free "
            "memory, or give it a smaller model, batch, cache or --memory-budget\n");
}
