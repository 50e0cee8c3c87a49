// ctest-labels: infer
// Task files (src/infer/choice_tasks.h): the documented JSONL form reads back, and every kind of bad
// line is one error naming the file, the line and the field.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "infer/choice_tasks.h"

namespace t6::infer {
namespace {

std::string write_task(const std::string& name, const std::string& text) {
  const std::string path = (testing::scratch_dir("choice_tasks_" + name) / (name + ".jsonl")).string();
  std::ofstream(path) << text;
  return path;
}

TEST(ChoiceTasks, TheDocumentedFormReadsBack) {
  const std::string path = write_task("arc", "{\"context\": \"Q: sky? A:\", \"choices\": [\" blue\", \" green\"], \"label\": 0}\n"
                                             "\n"
                                             "{\"id\": 7, \"context\": \"\", \"choices\": [\"a\", \"b\", \"c\"], \"label\": 2}\n"
                                             "{\"context\": [\"He x\", \"He y\"], \"choices\": [\" ran\", \" ran\"], \"label\": 1}\n");
  const ChoiceTask task = read_choice_task(path);
  EXPECT_EQ(task.name, "arc");
  ASSERT_EQ(task.examples.size(), 3u);
  EXPECT_EQ(task.examples[2].contexts, (std::vector<std::string>{"He x", "He y"}));
  EXPECT_EQ(task.examples[0].contexts, (std::vector<std::string>{"Q: sky? A:", "Q: sky? A:"}));
  EXPECT_EQ(task.examples[0].choices, (std::vector<std::string>{" blue", " green"}));
  EXPECT_EQ(task.examples[1].label, 2);
}

TEST(ChoiceTasks, BadLinesNameTheFileLineAndField) {
  const std::string good = "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"label\": 1}\n";
  const std::string unknown = write_task("unknown", good + "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"answer\": 1, \"label\": 0}\n");
  testing::expect_mentions(testing::error_of([&] { read_choice_task(unknown); }), {unknown + ":2", "unknown field 'answer'"});
  const std::string missing = write_task("missing", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"]}\n");
  testing::expect_mentions(testing::error_of([&] { read_choice_task(missing); }), {missing + ":1", "'label'"});
  const std::string label = write_task("label", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"label\": 2}\n");
  testing::expect_mentions(testing::error_of([&] { read_choice_task(label); }), {label + ":1", "'label'"});
  const std::string one = write_task("one", "{\"context\": \"x\", \"choices\": [\"a\"], \"label\": 0}\n");
  testing::expect_mentions(testing::error_of([&] { read_choice_task(one); }), {one + ":1", "'choices'"});
  const std::string contexts = write_task("contexts", "{\"context\": [\"x\"], \"choices\": [\"a\", \"b\"], \"label\": 0}\n");
  testing::expect_mentions(testing::error_of([&] { read_choice_task(contexts); }), {contexts + ":1", "'context'"});
  const std::string broken = write_task("broken", good + "{\"context\": \n");
  testing::expect_mentions(testing::error_of([&] { read_choice_task(broken); }), {broken + ":2", "not valid JSON"});
  testing::expect_mentions(testing::error_of([] { read_choice_task("/nonexistent/task.jsonl"); }),
                           {"/nonexistent/task.jsonl"});
}

}  // namespace
}  // namespace t6::infer
