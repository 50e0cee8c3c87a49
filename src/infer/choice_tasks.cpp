#include "infer/choice_tasks.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace t6::infer {

namespace {

ChoiceExample parse_example(const nlohmann::json& line, const std::string& where) {
  T6_CHECK(line.is_object(), where, ": expected a JSON object {\"context\", \"choices\", \"label\"}");
  for (const auto& [key, value] : line.items())
    T6_CHECK(key == "context" || key == "choices" || key == "label" || key == "id", where, ": unknown field '", key,
             "' (expected context, choices, label and optionally id)");
  for (const char* key : {"context", "choices", "label"})
    T6_CHECK(line.contains(key), where, ": missing field '", key, "'");
  ChoiceExample example;
  T6_CHECK(line["choices"].is_array() && line["choices"].size() >= 2, where,
           ": field 'choices' must be a list of at least two strings");
  for (const auto& choice : line["choices"]) {
    T6_CHECK(choice.is_string() && !choice.get<std::string>().empty(), where,
             ": field 'choices' must hold non-empty strings");
    example.choices.push_back(choice.get<std::string>());
  }
  const nlohmann::json& context = line["context"];
  if (context.is_string()) {
    example.contexts.assign(example.choices.size(), context.get<std::string>());
  } else {
    T6_CHECK(context.is_array() && context.size() == example.choices.size(), where,
             ": field 'context' must be a string or a list of one string per choice");
    for (const auto& text : context) {
      T6_CHECK(text.is_string(), where, ": field 'context' must hold strings");
      example.contexts.push_back(text.get<std::string>());
    }
  }
  T6_CHECK(line["label"].is_number_integer(), where, ": field 'label' must be an integer");
  example.label = line["label"].get<int64_t>();
  T6_CHECK(example.label >= 0 && example.label < int64_t(example.choices.size()), where, ": field 'label' (",
           example.label, ") is not the index of one of the ", example.choices.size(), " choices");
  return example;
}

}  // namespace

ChoiceTask read_choice_task(const std::string& path) {
  std::ifstream in(path);
  T6_CHECK(in, path, ": cannot open the task file");
  ChoiceTask task;
  task.name = std::filesystem::path(path).stem().string();
  std::string text;
  for (int64_t line_number = 1; std::getline(in, text); ++line_number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = str(path, ":", line_number);
    nlohmann::json line;
    try {
      line = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& error) {
      fail(str(where, ": not valid JSON (", error.what(), ")"));
    }
    task.examples.push_back(parse_example(line, where));
  }
  T6_CHECK(!task.examples.empty(), path, ": no examples");
  return task;
}

}  // namespace t6::infer
