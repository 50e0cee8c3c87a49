// t6_generate: text from a trained model with the generation cache (src/infer/).
//   t6_generate --checkpoint runs/demo --prompt "ROMEO:" --max-new-tokens 100 --temperature 0.8 --top-k 40
//   t6_generate --checkpoint model.safetensors --prompts prompts.txt --batch 8 --json
//   echo "To be" | t6_generate --checkpoint runs/demo/checkpoints
// Each prompt is EOT (the start of every training document) followed by its tokens. Text streams to
// stdout as tokens arrive (one prompt at a time; with --batch N each finished batch is printed in
// order); stderr gets prefill and decode tokens/s, where decoding ran and the cache size. --backend
// cuda decodes on GPU 0 (auto does where one is visible). Errors print one line,
// "t6_generate: error: ...", and exit 1.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "apps/tool_main.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "infer/byte_size.h"
#include "infer/decode_backend.h"
#include "infer/generation.h"
#include "infer/model_source.h"
#include "infer/utf8_stream.h"

namespace {

using namespace t6;
using namespace t6::infer;

struct Options {
  std::string checkpoint, prompt, prompts_file, tokenizer, backend = "auto", memory_budget = "0",
                                                                 order = "factorised", cache_dtype = "fp32";
  int64_t batch = 1, max_context = 0, block_tokens = 256;
  bool ignore_eot = false, json = false;
  GenerationOptions generation;
};

std::vector<std::string> read_prompts(const Options& options) {
  if (!options.prompt.empty()) return {options.prompt};
  std::vector<std::string> prompts;
  if (!options.prompts_file.empty()) {
    std::ifstream in(options.prompts_file);
    T6_CHECK(in, options.prompts_file, ": cannot open the prompts file");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) prompts.push_back(line);
    T6_CHECK(!prompts.empty(), options.prompts_file, ": no prompts (one per non-empty line)");
    return prompts;
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return {text};  // an empty prompt is EOT alone: unconditional samples
}

void print_json(const std::string& prompt, const std::vector<int32_t>& prompt_ids, const Generated& generated,
                const Tokenizer& tokenizer) {
  const std::vector<uint32_t> ids(generated.tokens.begin(), generated.tokens.end());
  nlohmann::json record = {{"prompt", prompt},
                           {"prompt_ids", prompt_ids},
                           {"ids", generated.tokens},
                           {"text", tokenizer.decode(ids)},
                           {"log_probs", generated.log_probs}};
  std::printf("%s\n", record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

int run(int argc, char** argv) {
  Options options;
  GenerationOptions& generation = options.generation;
  CLI::App app{"Generate text from a t6 model with its KV cache (the factor cache for TPA)."};
  app.add_option("--checkpoint,--model", options.checkpoint,
                 "a checkpoint step directory, a checkpoints or run directory (latest), or a .safetensors file")
      ->required();
  app.add_option("--prompt", options.prompt, "the prompt text");
  app.add_option("--prompts", options.prompts_file, "a file of prompts, one per line (default: stdin, read whole)");
  app.add_option("--max-new-tokens", generation.max_new_tokens, "tokens to generate per prompt")->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", generation.sampling.temperature, "softmax temperature; 0 = greedy");
  app.add_option("--top-k", generation.sampling.top_k, "sample among the k most probable tokens (0: all)");
  app.add_option("--top-p", generation.sampling.top_p, "sample among the smallest set of tokens whose mass reaches p");
  app.add_option("--seed", generation.seed, "random seed (prompt i samples with seed + i)");
  app.add_option("--batch", options.batch, "prompts decoded together, each with its own length")->check(CLI::PositiveNumber);
  app.add_flag("--ignore-eot", options.ignore_eot, "keep generating after the end-of-text token");
  app.add_flag("--json", options.json, "one JSON object per prompt: prompt, ids, text, per-token log-probs");
  app.add_option("--max-context", options.max_context,
                 "cache positions per sequence (default: the model's training seq_len, else 1024)")
      ->check(CLI::PositiveNumber);
  app.add_option("--memory-budget", options.memory_budget, "refuse a cache larger than this (e.g. 4GiB; 0: no limit)");
  app.add_option("--decode-order", options.order, "TPA decode attention: factorised (faster on CPU) or materialised")
      ->check(CLI::IsMember({"factorised", "materialised"}));
  app.add_option("--block-tokens", options.block_tokens, "cache positions per attention block")->check(CLI::PositiveNumber);
  app.add_option("--cache-dtype", options.cache_dtype, "cache element type: fp32, or bf16 for half the bytes")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--backend", options.backend,
                 "cpu, cuda (GPU 0: weights, cache and decode attention on the device), or auto: cuda where a GPU "
                 "is visible, except MLA and the materialised order")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--tokenizer", options.tokenizer, "r50k_base.tiktoken (default: $T6_TOKENIZER, then data_tools/cache)");
  if (const auto exit_code = parse_command_line(app, "t6_generate", argc, argv)) return *exit_code;
  generation.sampling.validate();
  generation.stop_at_eot = !options.ignore_eot;
  const uint64_t budget = parse_byte_size(options.memory_budget, "--memory-budget");

  // Everything that can be refused is checked before the weights are read.
  const ModelSource source = open_model_source(options.checkpoint);
  const TpaDecodeOrder order = tpa_decode_order_from_name(options.order);
  const DecodeBackend backend = choose_decode_backend(options.backend, source.config, order);
  const Tokenizer tokenizer = Tokenizer::load(resolve_tokenizer_path(options.tokenizer));
  check_vocabulary_fits(source, tokenizer.vocab_size());
  generation.vocab_limit = tokenizer.vocab_size();
  generation.eot = int32_t(tokenizer.eot_id());
  const int64_t max_context = options.max_context ? options.max_context : source.seq_len ? source.seq_len : 1024;
  const std::vector<std::string> prompts = read_prompts(options);
  std::vector<std::vector<int32_t>> prompt_ids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> ids = {generation.eot};
    for (uint32_t id : tokenizer.encode(prompts[i])) ids.push_back(int32_t(id));
    const int64_t needed = positions_needed(int64_t(ids.size()), generation.max_new_tokens);
    T6_CHECK(needed <= max_context, "prompt ", i, " has ", ids.size(), " tokens; with --max-new-tokens ",
             generation.max_new_tokens, " it needs ", needed, " cache positions, more than --max-context ", max_context);
    prompt_ids.push_back(ids);
  }
  const int64_t slots = std::min<int64_t>(options.batch, int64_t(prompts.size()));
  const DType cache_dtype = cache_dtype_from_name(options.cache_dtype);
  const uint64_t cache_bytes = uint64_t(slots * max_context * cache_bytes_per_token(source.config, cache_dtype));
  T6_CHECK(budget == 0 || cache_bytes <= budget, "the cache for ", slots, " sequences × ", max_context, " positions needs ",
           format_bytes(cache_bytes), ", more than --memory-budget ", format_bytes(budget),
           " (lower --max-context or --batch)");

  const std::unique_ptr<ModelWeights> weights = load_model_weights_on(source, backend.device);
  Decoder decoder(*weights, slots, max_context, DecodeOptions{options.block_tokens, order, 256, cache_dtype});

  GenerationStats stats;
  for (size_t first = 0; first < prompts.size(); first += size_t(slots)) {
    const size_t count = std::min(size_t(slots), prompts.size() - first);
    const std::vector<std::vector<int32_t>> batch(prompt_ids.begin() + int64_t(first),
                                                  prompt_ids.begin() + int64_t(first + count));
    const bool stream = !options.json && count == 1;
    Utf8Stream text;
    if (stream) std::printf("%s", prompts[first].c_str()), std::fflush(stdout);
    auto on_token = [&](size_t, int32_t token, double) {
      if (!stream || (token == generation.eot && generation.stop_at_eot)) return;
      const uint32_t id = uint32_t(token);
      std::fputs(text.push(tokenizer.decode(&id, 1)).c_str(), stdout);
      std::fflush(stdout);
    };
    const std::vector<Generated> results = generate(decoder, batch, generation, int64_t(first), on_token, stats);
    // Fewer tokens than asked for is no failure, but say why (on stderr, beside the text).
    for (size_t i = 0; i < count; ++i)
      if (int64_t(results[i].tokens.size()) < generation.max_new_tokens && generation.stop_at_eot)
        std::fprintf(stderr, "prompt %zu: stopped at end-of-text after %zu of --max-new-tokens %lld tokens "
                             "(--ignore-eot goes on)\n", first + i, results[i].tokens.size(),
                     (long long)generation.max_new_tokens);
    for (size_t i = 0; i < count; ++i) {
      if (options.json) {
        print_json(prompts[first + i], batch[i], results[i], tokenizer);
      } else if (stream) {
        std::printf("%s\n", text.finish().c_str());
      } else {
        std::vector<uint32_t> ids(results[i].tokens.begin(), results[i].tokens.end());
        if (!ids.empty() && ids.back() == uint32_t(generation.eot) && generation.stop_at_eot) ids.pop_back();
        std::printf("%s%s\n\n", prompts[first + i].c_str(), tokenizer.decode(ids).c_str());
      }
    }
    std::fflush(stdout);
  }
  std::fprintf(stderr, "prefill: %lld tokens, %.1f tokens/s | decode: %lld tokens, %.1f tokens/s on %s | cache: %s (%lld B per token, %lld sequences × %lld positions) | buffers: %s\n",
               (long long)stats.prefill_tokens, double(stats.prefill_tokens) / std::max(stats.prefill_seconds, 1e-9),
               (long long)stats.decode_tokens, double(stats.decode_tokens) / std::max(stats.decode_seconds, 1e-9),
               backend.description.c_str(), format_bytes(decoder.cache().bytes()).c_str(), (long long)cache_bytes_per_token(source.config, cache_dtype),
               (long long)slots, (long long)max_context, decoder.describe_buffers().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return t6::run_tool("t6_generate", argc, argv, run); }
