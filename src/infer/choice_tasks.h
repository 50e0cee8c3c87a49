// Zero-shot multiple-choice tasks in one JSONL form, one example per line:
//   {"context": "Question: ... Answer:", "choices": [" yes", " no"], "label": 0}
// `context` is the text every choice continues (may be ""), or a list of one context per choice
// (WinoGrande's partial scoring: the option goes in the context, the shared rest is scored);
// `choices` the continuations (at least two, each non-empty, written with the separator they need,
// usually a leading space); `label` the index of the right choice. Optional: "id" (any JSON value).
// Any other field is an error. data_tools/convert_choice_tasks.py writes this form from the public task layouts.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace t6::infer {

struct ChoiceExample {
  std::vector<std::string> contexts;  // one per choice (the same text when the file gives one)
  std::vector<std::string> choices;
  int64_t label = 0;
};

struct ChoiceTask {
  std::string name;  // the file's stem
  std::vector<ChoiceExample> examples;
};

// Reads a task file; errors name the file, the line and the field.
ChoiceTask read_choice_task(const std::string& path);

}  // namespace t6::infer
