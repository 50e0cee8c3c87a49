// ctest-timeout: 300
// End to end: t6_preprocess writes shards from the bundled corpus, `mpirun -np 2 t6_pretrain` trains
// on them, and metrics.jsonl holds one record per step with the contract's keys and falling loss.
// Bad configurations end every rank with one clear line and a non-zero exit, never a hang.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/child_process.h"
#include "common/command.h"
#include "common/test_paths.h"
#include "kernels/device.h"

using namespace t6::testing;

namespace {

CommandResult run(const std::string& command) { return run_command(command); }

class PretrainCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workdir_ = scratch_dir("pretrain_cli");
    corpus_ = workdir_ / "corpus";
    const CommandResult result = run((bin_dir() / "t6_preprocess").string() + " --input " +
                                     (source_dir() / "data_tools/corpora/tinyshakespeare.jsonl").string() + " --output " +
                                     corpus_.string() + " --val-fraction 0.1 --shard-tokens 100000");
    ASSERT_EQ(result.exit_code, 0) << result.output;
    config_ = workdir_ / "tiny.toml";
    std::ofstream(config_) << "[model]\nkind = \"T6\"\nn_layer = 2\nn_embd = 64\nn_head = 6\nhead_dim = 16\n"
                              "q_rank = 6\nrank = 2\nvocab_size = 50304\n"
                              "[train]\nseq_len = 32\nmicro_batch_size = 2\nglobal_batch_size = 8\nmax_steps = 12\n"
                              "lr = 3e-3\nmin_lr = 3e-4\nwarmup_steps = 2\n"
                              "[data]\npath = \"" << corpus_.string() << "\"\n"
                              "[parallel]\ntp = 2\n[eval]\ninterval = 6\nbatches = 2\n[log]\ninterval = 4\n";
  }

  std::string pretrain(int ranks, const std::string& run_dir, const std::string& extra = "") {
    return mpirun_prefix(ranks) + (bin_dir() / "t6_pretrain").string() + " --config " + config_.string() + " --run-dir " +
           run_dir + " --set parallel.threads=1 " + extra;
  }

  static inline std::filesystem::path workdir_, corpus_, config_;
};

TEST_F(PretrainCli, TwoRanksTrainAndWriteMetrics) {
  const std::string run_dir = (workdir_ / "run").string();
  const CommandResult result = run(pretrain(2, run_dir));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("TP 2 × DP 1"), std::string::npos) << result.output;

  std::ifstream metrics(run_dir + "/metrics.jsonl");
  std::string line;
  std::vector<double> losses;
  int evaluations = 0;
  while (std::getline(metrics, line)) {
    const auto record = nlohmann::json::parse(line);
    if (record.contains("val_loss")) {
      ++evaluations;
      EXPECT_TRUE(record["val_loss"].is_number());
      continue;
    }
    for (const char* key : {"step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"})
      EXPECT_TRUE(record.contains(key)) << key << " missing in " << line;
    EXPECT_EQ(record["step"].get<int64_t>(), int64_t(losses.size()) + 1);
    losses.push_back(record["loss"]);
  }
  ASSERT_EQ(losses.size(), 12u);
  EXPECT_EQ(evaluations, 3);  // before the first step, at step 6 and at step 12
  EXPECT_NEAR(losses.front(), std::log(50304.0), 0.5);  // a fresh model is about uniform over the vocab
  EXPECT_LT(losses.back(), losses.front() - 1.0);
}

size_t occurrences(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

// Every rank parses the same command line; a bad flag was printed by each of them, in CLI11's own
// words, and the help twice.
TEST_F(PretrainCli, BadFlagsUnderMpirunArePrintedOnceAsOneErrorLine) {
  const std::string tool = mpirun_prefix(2) + (bin_dir() / "t6_pretrain").string();
  const std::string run_dir = " --run-dir " + (workdir_ / "bad_flags").string();
  struct Case {
    std::string arguments, names;
  };
  for (const Case& bad : {Case{" --config " + config_.string() + run_dir + " --frobnicate", "--frobnicate"},
                          Case{run_dir, "--config is required"},
                          Case{" --config " + (workdir_ / "absent.toml").string() + run_dir, "absent.toml"},
                          Case{" --config " + config_.string() + " --run-dir ''", "--run-dir is empty"}}) {
    SCOPED_TRACE(bad.arguments);
    const CommandResult result = run(tool + bad.arguments);
    EXPECT_NE(result.exit_code, 0);
    EXPECT_NE(result.exit_code, 124) << "timed out: a rank hung";
    EXPECT_EQ(occurrences(result.output, "t6_pretrain: error: "), 1u) << result.output;
    EXPECT_NE(result.output.find(bad.names), std::string::npos) << result.output;
  }
  const CommandResult help = run(tool + " --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_EQ(occurrences(help.output, "Usage:"), 1u) << help.output;
  EXPECT_FALSE(std::filesystem::exists(workdir_ / "bad_flags"));
}

TEST_F(PretrainCli, ResumeAtOrPastMaxStepsSaysThereIsNothingLeftToTrain) {
  // It ended with exit 0 and no word: a lowered max_steps looked like a run that did nothing.
  const std::string run_dir = (workdir_ / "finished").string();
  ASSERT_EQ(run(pretrain(2, run_dir, "--set train.max_steps=2 --set eval.interval=0")).exit_code, 0);
  const std::string metrics = read_text(run_dir + "/metrics.jsonl");
  for (const char* max_steps : {"2", "1"}) {
    const CommandResult result = run(pretrain(2, run_dir, std::string("--resume --set eval.interval=0 --set train.max_steps=") + max_steps));
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find(std::string("resumed at step 2, which train.max_steps = ") + max_steps +
                                 " does not exceed: nothing left to train"),
              std::string::npos)
        << result.output;
    EXPECT_EQ(read_text(run_dir + "/metrics.jsonl"), metrics);
  }
}

TEST_F(PretrainCli, DamagedManifestIsNotBlamedOnTheRunConfig) {
  // The manifest's own model.n_head and model.n_embd were said to come from the run's config file.
  const std::string run_dir = (workdir_ / "bad_manifest").string();
  ASSERT_EQ(run(pretrain(2, run_dir, "--set train.max_steps=1 --set eval.interval=0")).exit_code, 0);
  const std::string manifest_path = run_dir + "/checkpoints/step_00000001/manifest.json";
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(manifest_path));
  manifest["config"]["model"]["kind"] = "llama_mha";  // n_head 6 does not divide n_embd 64
  std::ofstream(manifest_path) << manifest.dump();
  const CommandResult result = run(pretrain(2, run_dir, "--resume --set train.max_steps=2"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("cannot resume: checkpoint " + run_dir + "/checkpoints/step_00000001 is damaged"),
            std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("the manifest's model config is invalid"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("model.n_embd: " + config_.string()), std::string::npos) << result.output;
}

TEST_F(PretrainCli, UnknownKeyIsOneLineAndNonZeroExit) {
  const CommandResult result = run(pretrain(2, (workdir_ / "bad_key").string(), "--set train.learning_rate=1"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("unknown key 'train.learning_rate'"), std::string::npos) << result.output;
}

TEST_F(PretrainCli, WorldThatDoesNotFitTheLayoutAbortsEveryRank) {
  const CommandResult result = run(pretrain(3, (workdir_ / "bad_layout").string()));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.exit_code, 124) << "timed out: a rank hung";
  EXPECT_NE(result.output.find("parallel.tp = 2 does not fit the world of 3 ranks: it must divide the world size "
                               "(valid: 1, 3)"),
            std::string::npos)
      << result.output;
}

// This machine's build has CUDA or not, and no GPU, or a GPU without the CUDA training step: in
// every case parallel.backend = "cuda" must be one clear error on every rank, never a hang or a
// silent CPU run.
TEST_F(PretrainCli, CudaBackendThatCannotRunIsOneClearErrorOnEveryRank) {
  const CommandResult result = run(pretrain(2, (workdir_ / "cuda").string(), "--set parallel.backend=cuda"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.exit_code, 124) << "timed out: a rank hung";
  EXPECT_NE(result.output.find("parallel.backend = \"cuda\""), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("step 1/"), std::string::npos) << "trained anyway:\n" << result.output;
}

// NCCL where this machine's ranks cannot use it (a build without CUDA and NCCL, or no GPU, so the
// ranks run on the CPU backend): one line, printed once for every rank, and a non-zero exit before
// any step.
TEST_F(PretrainCli, NcclTheBuildOrMachineLacksIsOneClearErrorOnEveryRank) {
  if (t6::cuda_device_count() > 0) GTEST_SKIP() << "this machine's ranks have a GPU, and this build NCCL";
  const CommandResult result = run(pretrain(2, (workdir_ / "nccl").string(), "--set parallel.communicator=nccl"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.exit_code, 124) << "timed out: a rank hung";
  EXPECT_EQ(occurrences(result.output, "t6_pretrain: error: "), 1u) << result.output;
  EXPECT_NE(result.output.find(t6::build_has_cuda() ? "parallel.communicator = \"nccl\" needs the CUDA backend"
                                                : "parallel.communicator = \"nccl\", but this t6 was built without "
                                                  "CUDA and NCCL"),
            std::string::npos)
      << result.output;
  EXPECT_EQ(result.output.find("step 1/"), std::string::npos) << "trained anyway:\n" << result.output;
}

TEST_F(PretrainCli, VocabLargerThanTheModelIsRefusedNamingTheData) {
  const CommandResult result = run(pretrain(2, (workdir_ / "bad_vocab").string(), "--set model.vocab_size=1000"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.exit_code, 124) << "timed out: a rank hung";
  EXPECT_NE(result.output.find("50257 tokens but model.vocab_size is 1000"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find(corpus_.string()), std::string::npos) << result.output;
}

TEST_F(PretrainCli, MissingCorpusIsAClearError) {
  const CommandResult result =
      run(pretrain(2, (workdir_ / "no_data").string(), "--set data.path=" + (workdir_ / "nowhere").string()));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find((workdir_ / "nowhere").string()), std::string::npos) << result.output;
}

TEST_F(PretrainCli, EmptyDataPathSaysSoAndWhereItWasSet) {
  const CommandResult result = run(pretrain(2, (workdir_ / "empty_path").string(), "--set data.path='\"\"'"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("data.path is empty"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("data.path: --set data.path=\"\""), std::string::npos) << result.output;
}

TEST_F(PretrainCli, BatchThatDoesNotSplitNamesTheKeysAndTheirSources) {
  const CommandResult result = run(pretrain(2, (workdir_ / "bad_batch").string(), "--set parallel.tp=1 --set train.global_batch_size=6"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.exit_code, 124) << "timed out: a rank hung";
  EXPECT_NE(result.output.find("train.global_batch_size: --set train.global_batch_size=6"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("train.micro_batch_size: " + config_.string()), std::string::npos) << result.output;
}

// A batch or model that cannot fit is one line naming the key to lower and where it was set, before
// anything is allocated: no std::bad_alloc naming nothing, no minutes of zero-filling first.
TEST_F(PretrainCli, RunThatCannotFitInMemoryIsOneLineNamingTheKeyBeforeAllocating) {
  const struct {
    std::string set, advice, source;
  } cases[] = {
      {"--set train.global_batch_size=1073741824", "largest part is batches: lower train.global_batch_size",
       "train.global_batch_size: --set train.global_batch_size=1073741824"},
      {"--set train.global_batch_size=16777216 --set train.seq_len=1024",
       "largest part is batches: lower train.global_batch_size", "train.seq_len: --set train.seq_len=1024"},
      {"--set model.n_embd=131072 --set model.n_head=1024", "lower model.n_embd, model.n_layer or model.vocab_size",
       "model.n_embd: --set model.n_embd=131072"}};
  for (const auto& bad : cases) {
    const auto started = std::chrono::steady_clock::now();
    const CommandResult result = run(pretrain(2, (workdir_ / "too_big").string(), bad.set));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    EXPECT_NE(result.exit_code, 0) << bad.set;
    EXPECT_NE(result.exit_code, 124) << "timed out: a rank hung";
    EXPECT_NE(result.output.find("a rank of this run needs "), std::string::npos) << result.output;
    EXPECT_NE(result.output.find(bad.advice), std::string::npos) << result.output;
    EXPECT_NE(result.output.find(bad.source), std::string::npos) << "the key's source is not named:\n" << result.output;
    EXPECT_EQ(result.output.find("bad_alloc"), std::string::npos) << result.output;
    EXPECT_EQ(result.output.find("t6_pretrain: error:"), result.output.rfind("t6_pretrain: error:")) << result.output;
    EXPECT_LT(seconds, 30) << "allocated before refusing?\n" << result.output;
  }
}

TEST_F(PretrainCli, NonFiniteLossSavesTheLastFiniteStateAndStops) {
  // An absurd learning rate without clipping blows the weights up within a few steps.
  const std::string run_dir = (workdir_ / "diverges").string();
  const CommandResult result = run(pretrain(2, run_dir, "--set train.lr=1e30 --set train.min_lr=0 --set "
                                                        "train.warmup_steps=0 --set train.grad_clip=0"));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.exit_code, 124) << "timed out: a rank hung";
  EXPECT_NE(result.output.find("training diverged"), std::string::npos) << result.output;
  std::ifstream latest(run_dir + "/checkpoints/latest");
  std::string saved_step;
  ASSERT_TRUE(std::getline(latest, saved_step)) << "no checkpoint saved before stopping\n" << result.output;
  EXPECT_NE(result.output.find("saved checkpoint " + run_dir + "/checkpoints/" + saved_step), std::string::npos)
      << result.output;
}

}  // namespace

// --resume without --config continues with the checkpoint's config (here its train.lr, which the
// config file does not hold), --set still applies, and a max_steps raised past the checkpoint's
// decay end says what happens to the LR; RUN_DIR keeps the resolved config and the console's lines.
TEST_F(PretrainCli, ResumeWithoutConfigTakesTheCheckpointsConfig) {
  const std::string run_dir = (workdir_ / "resume_without_config").string();
  const CommandResult first = run(pretrain(2, run_dir, "--set train.max_steps=2 --set eval.interval=0 --set train.lr=2e-3"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string resumed_command = mpirun_prefix(2) + (bin_dir() / "t6_pretrain").string() + " --run-dir " + run_dir +
                                      " --resume --set train.max_steps=3";
  const CommandResult resumed = run(resumed_command);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("no --config: using the config saved in " + run_dir + "/checkpoints/step_00000002"),
            std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("train.max_steps = 3 goes past the checkpoint's decay end (step 2"), std::string::npos)
      << resumed.output;
  // Step 3 is past the decay end: exactly min_lr (3e-4 in the config file, kept in the checkpoint).
  std::ifstream metrics(run_dir + "/metrics.jsonl");
  std::string line, last;
  while (std::getline(metrics, line)) last = line;
  const auto record = nlohmann::json::parse(last);
  EXPECT_EQ(record["step"].get<int64_t>(), 3);
  EXPECT_DOUBLE_EQ(record["lr"].get<double>(), 3e-4);
  const std::string config = read_text(run_dir + "/config.toml");
  EXPECT_NE(config.find("lr = 0.002  # checkpoint " + run_dir + "/checkpoints/step_00000002"), std::string::npos) << config;
  EXPECT_NE(config.find("max_steps = 3  # --set train.max_steps=3"), std::string::npos) << config;
  // console.log holds both starts' lines, as printed.
  const std::string console = read_text(run_dir + "/console.log");
  const std::string step_three = resumed.output.substr(resumed.output.find("step 3/3"));
  EXPECT_NE(console.find(step_three.substr(0, step_three.find('\n'))), std::string::npos) << console;
  EXPECT_NE(console.find("step 2/2"), std::string::npos) << console;
  // Without a checkpoint there is no config to take: one line saying so.
  const CommandResult none = run(mpirun_prefix(2) + (bin_dir() / "t6_pretrain").string() + " --run-dir " +
                                 (workdir_ / "never_ran").string() + " --resume");
  EXPECT_EQ(none.exit_code, 1) << none.output;
  EXPECT_EQ(occurrences(none.output, "t6_pretrain: error: "), 1u) << none.output;
  EXPECT_NE(none.output.find("never_ran/checkpoints/latest: missing"), std::string::npos) << none.output;
}

// Fine-tuning from an import: t6_ckpt import writes step 0 with fresh AdamW state, which resumes with
// another seed, batch or corpus without --allow-change (nothing was trained from it yet). On the way:
// export says what it wrote and records the training seq_len, which t6_eval then uses.
TEST_F(PretrainCli, ImportedStepZeroResumesWithAnotherSeedWithoutAllowChange) {
  const std::string trained = (workdir_ / "to_export").string(), tuned = (workdir_ / "finetune").string();
  ASSERT_EQ(run(pretrain(2, trained, "--set train.max_steps=1 --set eval.interval=0")).exit_code, 0);
  const std::string tool = (bin_dir() / "t6_ckpt").string(), file = (workdir_ / "model.safetensors").string();
  const CommandResult exported = run(tool + " export " + trained + "/checkpoints " + file);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_NE(exported.output.find(file + ": f32 weights of step 1 (T6 L2 d64 H6 D16 Rq6 R2 V50304, "), std::string::npos)
      << "export says what it wrote: " << exported.output;
  // The export carries the training seq_len, so perplexity needs no --seq-len; inspect shows the model.
  const CommandResult perplexity = run((bin_dir() / "t6_eval").string() + " perplexity --checkpoint " + file +
                                       " --data " + corpus_.string() + " --windows 4");
  EXPECT_EQ(perplexity.exit_code, 0) << perplexity.output;
  EXPECT_NE(perplexity.output.find("\"seq_len\":32"), std::string::npos) << perplexity.output;
  const CommandResult inspected = run(tool + " inspect " + trained + "/checkpoints");
  EXPECT_NE(inspected.output.find("model       T6 L2 d64 H6 D16 Rq6 R2 V50304, "), std::string::npos) << inspected.output;
  const CommandResult imported = run(tool + " import " + file + " " + tuned + "/checkpoints --config " + config_.string());
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  const CommandResult result =
      run(pretrain(2, tuned, "--resume --set train.max_steps=1 --set eval.interval=0 --set train.seed=7"));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("at step 0"), std::string::npos) << result.output;
  // A trained checkpoint still refuses another seed.
  const CommandResult refused = run(pretrain(2, trained, "--resume --set train.max_steps=2 --set train.seed=7"));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("train.seed (checkpoint 1337, run 7)"), std::string::npos) << refused.output;
}
