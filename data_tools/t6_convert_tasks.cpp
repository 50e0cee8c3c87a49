// t6_convert_tasks: public multiple-choice task files to t6_eval's JSONL form
// {"context", "choices", "label"} (src/infer/choice_tasks.h), with the prompts lm-evaluation-harness
// uses for the T6 paper's tasks. Inputs are JSONL, one example per line, in the tasks' published
// layouts (the original releases or the Hugging Face datasets' JSON export):
//   arc        ARC-Easy / ARC-Challenge: question {stem, choices [{text, label}]} or question + choices
//              {text, label}; answerKey             → "Question: Q\nAnswer:", " text"
//   obqa       OpenBookQA: the same as ARC (question.stem or question_stem)  → "Q", " text"
//   boolq      passage, question, answer (bool) or label (0/1)  → "P\nQuestion: Q?\nAnswer:", [" no", " yes"]
//   hellaswag  activity_label, ctx_a, ctx_b (or ctx), endings, label  → cleaned "A: ctx", " ending"
//   piqa       goal, sol1, sol2, label (or --labels FILE, one 0/1 per line)  → "Question: G\nAnswer:", " sol"
//   winogrande sentence with "_", option1, option2, answer ("1"/"2")  → one context per option
//              (text before "_" with the option), the shared rest as the choice (partial scoring)
//   sciq       support, question, distractor1-3, correct_answer  → "S\nQuestion: Q\nAnswer:", " answer" (last)
//   mmlu       question, choices [4], answer (0-3)  → "Q\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:", [" A", ..]
//   build/bin/t6_convert_tasks --format arc --input ARC-Easy-Test.jsonl --output arc_easy.jsonl
// Errors name the file, the line and the field, print one line and exit 1.
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "apps/tool_main.h"
#include "core/error.h"

namespace {

using namespace t6;
using nlohmann::json;

const json& field(const json& line, const char* name, const std::string& where) {
  T6_CHECK(line.contains(name), where, ": missing field '", name, "'");
  return line[name];
}
std::string text_field(const json& line, const char* name, const std::string& where) {
  const json& value = field(line, name, where);
  T6_CHECK(value.is_string(), where, ": field '", name, "' must be a string");
  return value.get<std::string>();
}

json example(const json& context, const std::vector<std::string>& choices, int64_t label) {
  return {{"context", context}, {"choices", choices}, {"label", label}};
}

// ARC and OpenBookQA: the question's stem and lettered (or numbered) choices, answerKey names one.
json lettered_choices(const json& line, const std::string& where, bool arc) {
  const json& question = field(line, arc ? "question" : (line.contains("question_stem") ? "question_stem" : "question"), where);
  std::string stem;
  json choices;
  if (question.is_object()) {
    stem = text_field(question, "stem", where);
    choices = field(question, "choices", where);
  } else {
    T6_CHECK(question.is_string(), where, ": field 'question' must be a string or {stem, choices}");
    stem = question.get<std::string>();
    const json& listed = field(line, "choices", where);
    for (size_t i = 0; i < field(listed, "text", where).size(); ++i)
      choices.push_back({{"text", listed["text"][i]}, {"label", field(listed, "label", where)[i]}});
  }
  const std::string key = text_field(line, "answerKey", where);
  std::vector<std::string> texts;
  int64_t label = -1;
  for (const json& choice : choices) {
    if (text_field(choice, "label", where) == key) label = int64_t(texts.size());
    texts.push_back(" " + text_field(choice, "text", where));
  }
  T6_CHECK(label >= 0, where, ": field 'answerKey' (", key, ") names none of the choices");
  return example(arc ? "Question: " + stem + "\nAnswer:" : stem, texts, label);
}

// HellaSwag's cleaning of WikiHow text, as the harness does it.
std::string hellaswag_clean(std::string text) {
  while (!text.empty() && text.front() == ' ') text.erase(0, 1);
  while (!text.empty() && text.back() == ' ') text.pop_back();
  text = std::regex_replace(text, std::regex(" \\[title\\]"), ". ");
  text = std::regex_replace(text, std::regex("\\[.*?\\]"), "");
  return std::regex_replace(text, std::regex("  "), " ");
}

json hellaswag(const json& line, const std::string& where) {
  std::string context;
  if (line.contains("ctx_a")) {
    std::string second = text_field(line, "ctx_b", where);
    if (!second.empty()) second[0] = char(std::toupper(static_cast<unsigned char>(second[0])));
    context = text_field(line, "ctx_a", where) + " " + second;
  } else {
    context = text_field(line, "ctx", where);
  }
  std::vector<std::string> endings;
  for (const json& ending : field(line, "endings", where)) endings.push_back(" " + hellaswag_clean(ending.get<std::string>()));
  const json& label = field(line, "label", where);
  const int64_t index = label.is_string() ? std::stoll(label.get<std::string>()) : label.get<int64_t>();
  return example(hellaswag_clean(text_field(line, "activity_label", where) + ": " + context), endings, index);
}

json boolq(const json& line, const std::string& where) {
  const json& answer = line.contains("answer") ? line["answer"] : field(line, "label", where);
  const bool yes = answer.is_boolean() ? answer.get<bool>() : answer.get<int64_t>() != 0;
  return example(text_field(line, "passage", where) + "\nQuestion: " + text_field(line, "question", where) + "?\nAnswer:",
                 {" no", " yes"}, yes ? 1 : 0);
}

json piqa(const json& line, const std::string& where, int64_t label) {
  if (label < 0) label = field(line, "label", where).get<int64_t>();
  return example("Question: " + text_field(line, "goal", where) + "\nAnswer:",
                 {" " + text_field(line, "sol1", where), " " + text_field(line, "sol2", where)}, label);
}

json winogrande(const json& line, const std::string& where) {
  const std::string sentence = text_field(line, "sentence", where);
  const size_t blank = sentence.find('_');
  T6_CHECK(blank != std::string::npos, where, ": field 'sentence' has no '_' to fill");
  std::string rest = sentence.substr(blank + 1);
  while (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
  const std::string before = sentence.substr(0, blank);
  const json contexts = {before + text_field(line, "option1", where), before + text_field(line, "option2", where)};
  return example(contexts, {" " + rest, " " + rest}, std::stoll(text_field(line, "answer", where)) - 1);
}

json sciq(const json& line, const std::string& where) {
  return example(text_field(line, "support", where) + "\nQuestion: " + text_field(line, "question", where) + "\nAnswer:",
                 {" " + text_field(line, "distractor1", where), " " + text_field(line, "distractor2", where),
                  " " + text_field(line, "distractor3", where), " " + text_field(line, "correct_answer", where)},
                 3);
}

json mmlu(const json& line, const std::string& where) {
  std::string question = text_field(line, "question", where);
  while (!question.empty() && std::isspace(static_cast<unsigned char>(question.back()))) question.pop_back();
  const json& choices = field(line, "choices", where);
  T6_CHECK(choices.is_array() && choices.size() == 4, where, ": field 'choices' must be a list of four strings");
  for (int i = 0; i < 4; ++i) question += str("\n", char('A' + i), ". ", choices[size_t(i)].get<std::string>());
  return example(question + "\nAnswer:", {" A", " B", " C", " D"}, field(line, "answer", where).get<int64_t>());
}

std::vector<int64_t> read_labels(const std::string& path) {
  std::vector<int64_t> labels;
  if (path.empty()) return labels;
  std::ifstream in(path);
  T6_CHECK(in, path, ": cannot open the labels file");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) labels.push_back(std::stoll(line));
  return labels;
}

int run(int argc, char** argv) {
  CLI::App app{"Convert public multiple-choice task files to t6_eval's JSONL form {\"context\", \"choices\", \"label\"}."};
  std::string format, input, output, labels_path;
  app.add_option("--format", format, "arc, obqa, boolq, hellaswag, piqa, winogrande, sciq or mmlu")
      ->required()
      ->check(CLI::IsMember({"arc", "obqa", "boolq", "hellaswag", "piqa", "winogrande", "sciq", "mmlu"}));
  app.add_option("--input", input, "the task's JSONL file")->required()->check(CLI::ExistingFile);
  app.add_option("--output", output, "the converted JSONL file")->required();
  app.add_option("--labels", labels_path, "piqa: the labels file of the original release (one 0/1 per line)");
  if (const auto exit_code = parse_command_line(app, "t6_convert_tasks", argc, argv)) return *exit_code;

  const std::vector<int64_t> labels = read_labels(labels_path);
  std::ifstream in(input);
  std::ofstream out(output);
  T6_CHECK(out, output, ": cannot write");
  int64_t converted = 0;
  std::string text;
  for (int64_t number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = str(input, ":", number);
    json line;
    try {
      line = json::parse(text);
      json result;
      if (format == "arc" || format == "obqa") result = lettered_choices(line, where, format == "arc");
      else if (format == "boolq") result = boolq(line, where);
      else if (format == "hellaswag") result = hellaswag(line, where);
      else if (format == "piqa") result = piqa(line, where, labels.empty() ? -1 : labels.at(size_t(converted)));
      else if (format == "winogrande") result = winogrande(line, where);
      else if (format == "sciq") result = sciq(line, where);
      else result = mmlu(line, where);
      out << result.dump() << "\n";
    } catch (const json::exception& error) {
      fail(str(where, ": ", error.what()));
    } catch (const std::out_of_range&) {
      fail(str(where, ": more examples than labels in ", labels_path));
    } catch (const std::invalid_argument&) {
      fail(str(where, ": a label is not a number"));
    }
    ++converted;
  }
  T6_CHECK(out.good(), output, ": writing failed");
  std::printf("%s: %lld examples\n", output.c_str(), (long long)converted);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return t6::run_tool("t6_convert_tasks", argc, argv, run); }
