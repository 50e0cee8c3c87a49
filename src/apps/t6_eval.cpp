// t6_eval: evaluation of a trained model (src/infer/).
//   t6_eval perplexity --checkpoint runs/demo --data data/shakespeare [--split val] [--windows N]
//   t6_eval choice --checkpoint runs/demo --tasks arc_easy.jsonl piqa.jsonl [--json results.json]
// perplexity: mean loss and exp(mean loss) over the first N validation windows (all by default),
// computed as t6_pretrain's evaluation does. choice: lm-evaluation-harness style zero-shot acc and
// acc_norm with standard errors per task (one JSONL file each, src/infer/choice_tasks.h) and over all
// examples, as a table on stdout and as JSON. Errors print one line, "t6_eval: error: ...", and exit 1.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/tool_main.h"
#include "core/durable_file.h"
#include "core/error.h"
#include "infer/choice_scoring.h"
#include "infer/model_source.h"
#include "infer/perplexity.h"

namespace {

using namespace t6;
using namespace t6::infer;

struct PerplexityOptions {
  std::string data, split = "val";
  int64_t windows = 0, seq_len = 0, batch = 8;
};

struct ChoiceOptions {
  std::vector<std::string> tasks;
  std::string json_path, tokenizer, cache_dtype = "fp32";
  int64_t batch = 16, max_context = 0;
};

void run_perplexity(const std::string& checkpoint, const PerplexityOptions& options) {
  T6_CHECK(options.split == "val", "--split ", options.split,
           ": only the val split has fixed evaluation windows (the train split is sampled at random)");
  const ModelSource source = open_model_source(checkpoint);
  const int64_t seq_len = options.seq_len ? options.seq_len : source.seq_len;
  T6_CHECK(seq_len > 0, checkpoint, " records no training seq_len; pass --seq-len");
  TokenLoader loader(options.data, seq_len, 0);
  T6_CHECK(loader.vocab_size() <= source.config.vocab_size, options.data, ": its vocabulary (", loader.vocab_size(),
           ") is larger than the model's (", source.config.vocab_size, ")");
  T6_CHECK(loader.val_windows() >= 1, options.data, ": its val split holds no window of ", seq_len + 1,
           " tokens (write the corpus with --val-fraction or --val-docs, or pass a smaller --seq-len)");
  const int64_t windows = options.windows ? options.windows : loader.val_windows();
  T6_CHECK(windows <= loader.val_windows(), "--windows ", windows, ": ", options.data, " has ", loader.val_windows(),
           " validation windows of ", seq_len + 1, " tokens");
  LanguageModel model(source.config, perplexity_batch(windows, options.batch), seq_len, nullptr, 1, false);
  load_model_weights(source, model.weights());
  // A full split takes a while on a CPU: a line on stderr every 5 s (stdout holds only the JSON).
  const auto start = std::chrono::steady_clock::now();
  double last_report = 0;
  const PerplexityResult result = evaluate_perplexity(model, loader, windows, [&](int64_t done, int64_t total) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed - last_report < 5 || done == total) return;
    last_report = elapsed;
    std::fprintf(stderr, "perplexity: %lld of %lld windows, %.0f s, about %.0f s left\n", (long long)done,
                 (long long)total, elapsed, elapsed / double(done) * double(total - done));
  });
  std::printf("%s\n", nlohmann::json({{"split", options.split},
                                      {"windows", result.windows},
                                      {"tokens", result.tokens},
                                      {"seq_len", seq_len},
                                      {"mean_loss", result.mean_loss},
                                      {"perplexity", result.perplexity}})
                          .dump()
                          .c_str());
}

nlohmann::json to_json(const ChoiceScore& score) {
  return {{"task", score.task},         {"examples", score.examples},         {"acc", score.acc},
          {"acc_stderr", score.acc_stderr}, {"acc_norm", score.acc_norm}, {"acc_norm_stderr", score.acc_norm_stderr}};
}

void run_choice(const std::string& checkpoint, const ChoiceOptions& options) {
  // Checked before the scoring, which can take hours, rather than when its results are written.
  if (!options.json_path.empty()) {
    const std::filesystem::path json(options.json_path), parent = json.parent_path().empty() ? "." : json.parent_path();
    T6_CHECK(std::filesystem::is_directory(parent), options.json_path, ": cannot write the results there: ",
             parent.string(), " is not a directory");
    T6_CHECK(!std::filesystem::is_directory(json), options.json_path, ": cannot write the results there: it is a directory");
  }
  std::vector<ChoiceTask> tasks;
  for (const std::string& path : options.tasks) tasks.push_back(read_choice_task(path));  // bad files fail first
  const ModelSource source = open_model_source(checkpoint);
  const Tokenizer tokenizer = Tokenizer::load(resolve_tokenizer_path(options.tokenizer));
  check_vocabulary_fits(source, tokenizer.vocab_size());
  const int64_t max_context = options.max_context ? options.max_context : source.seq_len ? source.seq_len : 1024;
  ModelWeights weights(source.config, 0, 1, 1, false);
  load_model_weights(source, weights);
  Decoder decoder(weights, options.batch, max_context,
                  DecodeOptions{.cache_dtype = cache_dtype_from_name(options.cache_dtype)});

  std::vector<ChoiceScore> scores;
  std::vector<ExampleOutcome> all;
  for (const ChoiceTask& task : tasks) {
    std::vector<ContinuationRequest> requests;
    for (const ChoiceExample& example : task.examples)
      for (size_t i = 0; i < example.choices.size(); ++i)
        requests.push_back(encode_pair(tokenizer, example.contexts[i], example.choices[i]));
    const std::vector<double> log_likelihoods = score_continuations(decoder, requests);
    std::vector<ExampleOutcome> outcomes;
    size_t next = 0;
    for (const ChoiceExample& example : task.examples) {
      const std::vector<double> example_scores(log_likelihoods.begin() + int64_t(next),
                                               log_likelihoods.begin() + int64_t(next + example.choices.size()));
      next += example.choices.size();
      outcomes.push_back(judge_example(example, example_scores));
    }
    all.insert(all.end(), outcomes.begin(), outcomes.end());
    scores.push_back(summarise(task.name, outcomes));
  }
  if (tasks.size() > 1) scores.push_back(summarise("overall", all));

  std::printf("%-24s %9s %8s %8s %9s %8s\n", "task", "examples", "acc", "±", "acc_norm", "±");
  nlohmann::json results = nlohmann::json::array();
  for (const ChoiceScore& score : scores) {
    std::printf("%-24s %9lld %8.4f %8.4f %9.4f %8.4f\n", score.task.c_str(), (long long)score.examples, score.acc,
                score.acc_stderr, score.acc_norm, score.acc_norm_stderr);
    results.push_back(to_json(score));
  }
  if (!options.json_path.empty()) write_file_atomically(options.json_path, results.dump(2) + "\n");
}

int run(int argc, char** argv) {
  CLI::App app{"Evaluate a t6 model: perplexity on a token corpus, zero-shot multiple-choice accuracy."};
  app.require_subcommand(1);
  std::string checkpoint;
  PerplexityOptions perplexity;
  ChoiceOptions choice;
  const char* checkpoint_help =
      "a checkpoint step directory, a checkpoints or run directory (latest), or a .safetensors file";
  CLI::App* perplexity_command = app.add_subcommand("perplexity", "mean loss and perplexity over validation windows");
  perplexity_command->add_option("--checkpoint,--model", checkpoint, checkpoint_help)->required();
  perplexity_command->add_option("--data", perplexity.data, "a corpus directory written by t6_preprocess")->required();
  perplexity_command->add_option("--split", perplexity.split, "val (the fixed evaluation windows)");
  perplexity_command->add_option("--windows", perplexity.windows, "windows to evaluate (default: all)")
      ->check(CLI::NonNegativeNumber);
  perplexity_command->add_option("--seq-len", perplexity.seq_len, "window length (default: the run's seq_len)")
      ->check(CLI::NonNegativeNumber);
  perplexity_command->add_option("--batch", perplexity.batch, "windows per forward pass (at most)")->check(CLI::PositiveNumber);
  CLI::App* choice_command = app.add_subcommand("choice", "zero-shot multiple-choice acc and acc_norm");
  choice_command->add_option("--checkpoint,--model", checkpoint, checkpoint_help)->required();
  choice_command->add_option("--tasks", choice.tasks, "task files, JSONL {\"context\", \"choices\", \"label\"}")
      ->required();
  choice_command->add_option("--json", choice.json_path, "also write the scores to this JSON file");
  choice_command->add_option("--batch", choice.batch, "choices scored together")->check(CLI::PositiveNumber);
  choice_command->add_option("--max-context", choice.max_context, "tokens per scored sequence (default: the run's seq_len)")
      ->check(CLI::NonNegativeNumber);
  choice_command->add_option("--cache-dtype", choice.cache_dtype, "cache element type: fp32, or bf16 for half the bytes")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  choice_command->add_option("--tokenizer", choice.tokenizer, "r50k_base.tiktoken (default: $T6_TOKENIZER, then data_tools/cache)");
  if (const auto exit_code = parse_command_line(app, "t6_eval", argc, argv)) return *exit_code;
  if (*perplexity_command) run_perplexity(checkpoint, perplexity);
  if (*choice_command) run_choice(checkpoint, choice);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return t6::run_tool("t6_eval", argc, argv, run); }
