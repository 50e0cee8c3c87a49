#include "train/run_config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <toml++/toml.h>

#include "core/error.h"

namespace t6 {

namespace {

template <class Field>
ConfigKey<RunConfig> key(std::string name, ValueRange range, std::string meaning, Field field) {
  return config_key<RunConfig>(std::move(name), std::move(range), std::move(meaning), field);
}

std::vector<ConfigKey<RunConfig>> make_run_config_keys() {
  std::vector<ConfigKey<RunConfig>> keys;
  for (const ConfigKey<ModelConfig>& model_key : model_config_keys())
    keys.push_back({model_key.name, model_key.type, model_key.range, model_key.meaning,
                    [get = model_key.get](const RunConfig& config) { return get(config.model); },
                    [set = model_key.set](RunConfig& config, const ConfigValue& value) { set(config.model, value); }});
  const std::vector<ConfigKey<RunConfig>> others = {
      key("train.seed", at_least(0), "seed of the weight initialisation and of the batch order",
          [](auto& c) -> auto& { return c.train.seed; }),
      key("train.seq_len", closed_range(1, 1 << 22), "tokens per training window (T)", [](auto& c) -> auto& { return c.train.seq_len; }),
      key("train.micro_batch_size", closed_range(0, 1 << 16),
          "sequences per forward/backward on one rank; must divide each DP rank's share of the global batch; 0: "
          "derived per rank, the largest divisor of its share up to 16",
          [](auto& c) -> auto& { return c.train.micro_batch_size; }),
      key("train.global_batch_size", closed_range(1, 1 << 30),
          "sequences per optimizer step over all DP ranks (at least the DP size); each DP rank reads "
          "global / DP of them, the first global mod DP ranks one more",
          [](auto& c) -> auto& { return c.train.global_batch_size; }),
      key("train.max_steps", at_least(1), "optimizer steps of the run", [](auto& c) -> auto& { return c.train.max_steps; }),
      key("train.lr", at_least(0), "peak learning rate, reached after the warmup", [](auto& c) -> auto& { return c.train.lr; }),
      key("train.min_lr", at_least(0), "learning rate at the end of the cosine decay; at most train.lr",
          [](auto& c) -> auto& { return c.train.min_lr; }),
      key("train.warmup_steps", at_least(0), "steps of linear warmup from 0 (lr * step / warmup_steps)",
          [](auto& c) -> auto& { return c.train.warmup_steps; }),
      key("train.lr_decay_steps", at_least(0),
          "step at which the cosine reaches min_lr; 0: max(train.max_steps, train.warmup_steps) (stored in "
          "checkpoints, kept on resume); not below warmup_steps when set",
          [](auto& c) -> auto& { return c.train.lr_decay_steps; }),
      key("train.weight_decay", at_least(0), "decoupled AdamW weight decay, on every parameter",
          [](auto& c) -> auto& { return c.train.weight_decay; }),
      key("train.grad_clip", at_least(0), "clip of the global gradient norm; 0 disables clipping",
          [](auto& c) -> auto& { return c.train.grad_clip; }),
      key("train.beta1", from_up_to_below(0, 1), "AdamW first-moment decay", [](auto& c) -> auto& { return c.train.beta1; }),
      key("train.beta2", from_up_to_below(0, 1), "AdamW second-moment decay", [](auto& c) -> auto& { return c.train.beta2; }),
      key("train.eps", above(0), "AdamW epsilon", [](auto& c) -> auto& { return c.train.eps; }),
      key("train.max_skipped_steps", at_least(1),
          "steps with a non-finite loss or gradient norm skipped in a row (nothing updated) before the run stops",
          [](auto& c) -> auto& { return c.train.max_skipped_steps; }),
      key("data.path", any_value(), "corpus directory written by t6_preprocess (t6_pretrain needs one)",
          [](auto& c) -> auto& { return c.data.path; }),
      key("data.max_open_shards", at_least(1),
          "shard files open at once per rank (least recently read closed first; each holds 1 MiB of HDF5 chunk cache)",
          [](auto& c) -> auto& { return c.data.max_open_shards; }),
      key("data.prefetch", any_value(), "read the next batch in a background thread while the current step computes",
          [](auto& c) -> auto& { return c.data.prefetch; }),
      key("parallel.tp", at_least(1), "tensor-parallel ranks per model replica; DP = world size / tp",
          [](auto& c) -> auto& { return c.parallel.tp; }),
      key("parallel.zero1", any_value(), "shard the AdamW state and master weights over DP (ZeRO-1)",
          [](auto& c) -> auto& { return c.parallel.zero1; }),
      key("parallel.bucket_mib", above_up_to(0, 4096),
          "MiB of fp32 gradients (whole parameters) per DP bucket: each is reduced over DP as soon as the "
          "backward has made it final, while the backward goes on",
          [](auto& c) -> auto& { return c.parallel.bucket_mib; }),
      key("parallel.threads", at_least(0), "CPU threads per rank; 0: the node's cores / ranks on the node",
          [](auto& c) -> auto& { return c.parallel.threads; }),
      key("parallel.timeout_s", above_up_to(0, 1e6),
          "seconds a collective waits for a slow or stopped rank before the job ends, naming the late rank (a "
          "rank that failed, or whose process is gone, ends the job at once); with NCCL, the seconds a step's "
          "device work may wait for its collectives before they are aborted (an NCCL error aborts them at once); "
          "before a resume it also bounds the checksumming of the newest checkpoint (each rank reads a share "
          "of its files) and of any older one fallen back to (read by rank 0 alone)",
          [](auto& c) -> auto& { return c.parallel.timeout_s; }),
      key("parallel.backend", one_of({"auto", "cpu", "cuda"}),
          "auto: CUDA where the build has it, the rank sees a GPU and the training step can use it; one rank per GPU",
          [](auto& c) -> auto& { return c.parallel.backend; }),
      key("parallel.communicator", one_of({"auto", "nccl", "mpi"}),
          "auto: NCCL with the CUDA backend, MPI with the CPU backend",
          [](auto& c) -> auto& { return c.parallel.communicator; }),
      key("eval.interval", at_least(0), "steps between validation passes; 0: never",
          [](auto& c) -> auto& { return c.eval.interval; }),
      key("eval.batches", at_least(0),
          "global batches of validation windows per pass (lowered to what the split holds); 0: every whole global "
          "batch of the split; each log line and record says how many windows it covered",
          [](auto& c) -> auto& { return c.eval.batches; }),
      key("checkpoint.interval", at_least(0), "steps between checkpoints; 0: only at the end (and on a stop signal)",
          [](auto& c) -> auto& { return c.checkpoint.interval; }),
      key("checkpoint.keep", at_least(0), "newest checkpoints kept; 0: all", [](auto& c) -> auto& { return c.checkpoint.keep; }),
      key("checkpoint.resume", one_of({"never", "auto"}),
          "auto: continue from the newest complete checkpoint of the run directory if there is one",
          [](auto& c) -> auto& { return c.checkpoint.resume; }),
      key("log.interval", at_least(1), "steps between log lines (metrics.jsonl gets every step)",
          [](auto& c) -> auto& { return c.log.interval; }),
      key("log.peak_flops", at_least(0),
          "peak FLOP/s of one rank that MFU is measured against; 0: the rate measured at start-up (CPU: SGEMM; CUDA: "
          "the GPU's bf16 GEMM)",
          [](auto& c) -> auto& { return c.log.peak_flops; }),
      key("log.tensorboard", any_value(), "also write every metrics.jsonl scalar as TensorBoard events to RUN_DIR/tensorboard/",
          [](auto& c) -> auto& { return c.log.tensorboard; }),
      key("log.sample_interval", at_least(0),
          "steps between sample generations: rank 0 continues log.sample_prompt with the current weights and "
          "writes the text to the console log and a metrics.jsonl record; 0: never",
          [](auto& c) -> auto& { return c.log.sample_interval; }),
      key("log.sample_prompt", any_value(), "text the samples continue, after EOT (the start of every document); "
          "empty: unconditional samples",
          [](auto& c) -> auto& { return c.log.sample_prompt; }),
      key("log.sample_tokens", closed_range(1, 4096), "tokens generated per sample (fewer when EOT comes first)",
          [](auto& c) -> auto& { return c.log.sample_tokens; }),
      key("log.sample_temperature", at_least(0),
          "softmax temperature of the samples; 0: greedy; above 0: sampled with train.seed, the same at every step",
          [](auto& c) -> auto& { return c.log.sample_temperature; }),
  };
  keys.insert(keys.end(), others.begin(), others.end());
  return keys;
}

const ConfigKey<RunConfig>* find_key(const std::string& name) {
  for (const ConfigKey<RunConfig>& key : run_config_keys())
    if (key.name == name) return &key;
  return nullptr;
}

bool is_section(const std::string& section) {
  const auto& keys = run_config_keys();
  return std::any_of(keys.begin(), keys.end(), [&](const ConfigKey<RunConfig>& key) { return key.section() == section; });
}

// The node's value as the key's type, or an error naming where it was given and the type wanted.
ConfigValue value_of(const toml::node& node, const ConfigKey<RunConfig>& key, const std::string& where) {
  switch (key.type) {
    case ConfigType::integer:
      T6_CHECK(node.is_integer(), where, ": ", key.name, " must be an integer");
      return *node.value<int64_t>();
    case ConfigType::real: {
      T6_CHECK(node.is_floating_point() || node.is_integer(), where, ": ", key.name, " must be a number");
      // TOML reads inf and nan as floats; no key means anything by them (an infinite lr turns the
      // warmup's 0 · lr into NaN weights, an infinite timeout_s overflows the deadline clock).
      const double number = *node.value<double>();
      T6_CHECK(std::isfinite(number), where, ": ", key.name, " must be a finite number, got ",
               format_config_value(number));
      return number;
    }
    case ConfigType::boolean:
      T6_CHECK(node.is_boolean(), where, ": ", key.name, " must be true or false");
      return *node.value<bool>();
    case ConfigType::string:
      T6_CHECK(node.is_string(), where, ": ", key.name, " must be a string");
      return *node.value<std::string>();
  }
  fail("internal error: unknown config type");
}

// Sets `name` from a TOML node; `where` names the source in errors and is recorded as the source.
void assign(RunConfig& config, const std::string& name, const toml::node& node, const std::string& where) {
  const ConfigKey<RunConfig>* key = find_key(name);
  if (!key) {
    std::vector<std::string> names;
    for (const ConfigKey<RunConfig>& known : run_config_keys()) names.push_back(known.name);
    fail(str(where, ": unknown key '", name, "'", did_you_mean(name, names)));
  }
  const ConfigValue value = value_of(node, *key, where);
  try {
    key->set(config, value);
  } catch (const Error& error) {
    fail(str(where, ": ", error.what()));
  }
  config.sources[name] = where;
}

void apply_table(RunConfig& config, const toml::table& root, const std::string& where) {
  for (const auto& [section_name, section] : root) {
    const std::string section_key(section_name.str());
    T6_CHECK(section.is_table(), where, ": '", section_key, "' must be a [section]");
    // Checked here too, so that an empty misspelt section is not ignored.
    T6_CHECK(is_section(section_key), where, ": unknown section [", section_key, "]");
    for (const auto& [name, node] : *section.as_table()) assign(config, section_key + "." + std::string(name.str()), node, where);
  }
}

// "train.lr=3e-4" → the key and a TOML node holding the value (a bare word becomes a string).
void apply_override(RunConfig& config, const std::string& text) {
  const std::string where = str("--set ", text);
  const size_t equals = text.find('='), dot = text.find('.');
  T6_CHECK(equals != std::string::npos && dot != std::string::npos && dot < equals, where,
           ": expected section.key=value");
  const std::string name = text.substr(0, equals), value = text.substr(equals + 1);
  toml::table parsed;
  try {
    parsed = toml::parse("value = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"value", value}};  // an unquoted string such as data.path=/data/x
  }
  assign(config, name, *parsed.get("value"), where);
}

bool is_name_character(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }

// Whether `message` names `key` as a whole word ("train.lr" is not named by "train.lr_decay_steps").
bool names_key(const std::string& message, const std::string& key) {
  for (size_t at = message.find(key); at != std::string::npos; at = message.find(key, at + 1)) {
    const size_t end = at + key.size();
    const bool starts = at == 0 || !is_name_character(message[at - 1]);
    const bool ends = end == message.size() || !is_name_character(message[end]) ||
                      (message[end] == '.' && (end + 1 == message.size() || !is_name_character(message[end + 1])));
    if (starts && ends) return true;
  }
  return false;
}

}  // namespace

const std::vector<ConfigKey<RunConfig>>& run_config_keys() {
  static const std::vector<ConfigKey<RunConfig>> keys = make_run_config_keys();
  return keys;
}

LrSchedule RunConfig::lr_schedule() const {
  // The default never falls below the warmup, so a short run of any config (--set train.max_steps=2)
  // is valid; only an explicit lr_decay_steps below the warmup is an error.
  const int64_t decay = train.lr_decay_steps > 0 ? train.lr_decay_steps : std::max(train.max_steps, train.warmup_steps);
  return {train.lr, train.min_lr, train.warmup_steps, decay};
}

void RunConfig::validate() const {
  model.validate();
  for (const ConfigKey<RunConfig>& key : run_config_keys())
    if (key.section() != "model") key.check_range(*this);
  T6_CHECK(train.min_lr <= train.lr, "train.min_lr (", train.min_lr, ") must be between 0 and train.lr (", train.lr, ")");
  T6_CHECK(lr_schedule().lr_decay_steps >= train.warmup_steps, "train.lr_decay_steps (", lr_schedule().lr_decay_steps,
           ") must not be below train.warmup_steps (", train.warmup_steps,
           "); leave it unset for max(max_steps, warmup_steps)");
}

std::string RunConfig::source_of(const std::string& key) const {
  const auto found = sources.find(key);
  return found == sources.end() ? "default" : found->second;
}

std::string RunConfig::with_sources(const std::string& message) const {
  std::string named;
  for (const ConfigKey<RunConfig>& key : run_config_keys())
    if (names_key(message, key.name)) named += str(named.empty() ? "" : "; ", key.name, ": ", source_of(key.name));
  return named.empty() ? message : str(message, " (", named, ")");
}

nlohmann::json RunConfig::to_json() const {
  nlohmann::json json = nlohmann::json::object();
  for (const ConfigKey<RunConfig>& key : run_config_keys())
    std::visit([&](const auto& value) { json[key.section()][key.key()] = value; }, key.get(*this));
  return json;
}

RunConfig RunConfig::from_json(const nlohmann::json& json) {
  RunConfig config;
  T6_CHECK(json.is_object(), "run config: expected a JSON object of sections");
  for (const auto& [section, entries] : json.items()) {
    T6_CHECK(entries.is_object(), "run config: section '", section, "' is not an object");
    for (const auto& [name, value] : entries.items()) {
      toml::table holder;
      if (value.is_boolean()) holder.insert("v", value.get<bool>());
      else if (value.is_number_integer()) holder.insert("v", value.get<int64_t>());
      else if (value.is_number()) holder.insert("v", value.get<double>());
      else if (value.is_string()) holder.insert("v", value.get<std::string>());
      else fail(str("run config: ", section, ".", name, " has an unsupported JSON type"));
      assign(config, section + "." + name, *holder.get("v"), "run config");
    }
  }
  config.sources.clear();  // stored values, not a user's file
  config.validate();
  return config;
}

RunConfig load_saved_run_config(const nlohmann::json& saved, const std::string& source,
                                const std::vector<std::string>& overrides) {
  RunConfig config;
  try {
    config = RunConfig::from_json(saved);
  } catch (const Error& error) {
    fail(str(source, ": ", error.what()));
  }
  for (const auto& [section, entries] : saved.items())
    for (const auto& [name, value] : entries.items()) config.sources[section + "." + name] = source;
  for (const std::string& text : overrides) apply_override(config, text);
  try {
    config.validate();
  } catch (const Error& error) {
    fail(str(source, ": ", config.with_sources(error.what())));
  }
  return config;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  RunConfig config;
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& error) {
    fail(str(path, ":", error.source().begin.line, ": ", error.description()));
  }
  apply_table(config, root, path);
  for (const std::string& text : overrides) apply_override(config, text);
  try {
    config.validate();
  } catch (const Error& error) {
    fail(str(path, ": ", config.with_sources(error.what())));
  }
  return config;
}

}  // namespace t6
