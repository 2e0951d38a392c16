// Answer files: the writers' exact fields in each ecosystem format, round trips through the
// reader, reader errors naming the line, joining MT-Bench answers with their questions.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "eval/answers.h"
#include "test_util.h"

namespace expo {
namespace {

using nlohmann::json;
using testing::error_of;

std::vector<std::string> keys_in_order(const std::string& object_text) {
  std::vector<std::string> keys;
  const auto object = nlohmann::ordered_json::parse(object_text);
  for (const auto& [key, value] : object.items()) keys.push_back(key);
  return keys;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = text.find('\n', at);
    lines.push_back(text.substr(at, end - at));
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return lines;
}

Answer answer_for(const Prompt& p, std::vector<std::string> turns) {
  Answer a;
  a.prompt = p;
  for (size_t t = 0; t < turns.size(); ++t) {
    a.finish_reasons.push_back(t == 0 ? "stop" : "length");
    a.output_tokens.push_back(10 + t);
  }
  a.turns = std::move(turns);
  return a;
}

AnswerWriteOptions options() {
  AnswerWriteOptions o;
  o.generator = "zephyr-expo-0.3";
  o.answer_id_seed = 0;
  o.tstamp = 1700000000.5;
  return o;
}

TEST(Answers, FormatNamesAndDefaults) {
  EXPECT_EQ(default_answer_format(PromptFormat::kAlpacaEval), AnswerFormat::kAlpacaEval);
  EXPECT_EQ(default_answer_format(PromptFormat::kMtBench), AnswerFormat::kMtBench);
  EXPECT_EQ(default_answer_format(PromptFormat::kJsonl), AnswerFormat::kJsonl);
  EXPECT_EQ(parse_answer_format("mt_bench"), AnswerFormat::kMtBench);
  EXPECT_EQ(parse_answer_format("alpaca_eval"), AnswerFormat::kAlpacaEval);
  EXPECT_EQ(parse_answer_format("jsonl"), AnswerFormat::kJsonl);
  EXPECT_ERROR(parse_answer_format("csv"), "\"csv\"", "jsonl, alpaca_eval or mt_bench");
  EXPECT_EQ(default_answer_file_name(AnswerFormat::kAlpacaEval, "m"), "model_outputs.json");
  EXPECT_EQ(default_answer_file_name(AnswerFormat::kMtBench, "m"), "m.jsonl");
  EXPECT_EQ(default_answer_file_name(AnswerFormat::kJsonl, "m"), "answers.jsonl");
}

TEST(Answers, AlpacaEvalFieldsAndRoundTrip) {
  const PromptSet prompts = parse_prompt_set(
      R"([{"instruction": "What is ExPO?", "dataset": "helpful_base", "output": "old", "generator": "gpt4"},
          {"instruction": "Name a color."}])",
      "alpaca_eval.json");
  std::vector<Answer> answers = {answer_for(prompts.prompts[0], {"Extrapolation."}),
                                 answer_for(prompts.prompts[1], {"Blue \xff"})};  // bad UTF-8
  const std::string text = format_answers(answers, AnswerFormat::kAlpacaEval, options());
  const json list = json::parse(text);
  ASSERT_TRUE(list.is_array());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].size(), 4u);
  EXPECT_EQ(list[0]["instruction"], "What is ExPO?");
  EXPECT_EQ(list[0]["output"], "Extrapolation.");
  EXPECT_EQ(list[0]["generator"], "zephyr-expo-0.3");
  EXPECT_EQ(list[0]["dataset"], "helpful_base");
  EXPECT_EQ(list[1]["dataset"], "expo");              // the default for prompts without one
  EXPECT_EQ(list[1]["output"], "Blue \xEF\xBF\xBD");  // invalid UTF-8 became U+FFFD
  // written order: instruction first, as AlpacaEval's own files
  const auto ordered = nlohmann::ordered_json::parse(text);
  std::vector<std::string> first_keys;
  for (const auto& [key, value] : ordered[1].items()) first_keys.push_back(key);
  EXPECT_EQ(first_keys,
            (std::vector<std::string>{"instruction", "output", "generator", "dataset"}));

  const AnswerSet back = parse_answers(text, "model_outputs.json");
  EXPECT_EQ(back.format, AnswerFormat::kAlpacaEval);
  ASSERT_EQ(back.answers.size(), 2u);
  EXPECT_EQ(back.answers[0].prompt.instruction, "What is ExPO?");
  EXPECT_EQ(back.answers[0].prompt.id_text, "0");
  EXPECT_EQ(back.answers[0].turns, std::vector<std::string>{"Extrapolation."});
  EXPECT_EQ(back.answers[0].generator, "zephyr-expo-0.3");
  EXPECT_TRUE(back.answers[0].finish_reasons.empty());  // AlpacaEval does not say
  EXPECT_EQ(full_conversation(back.answers[1].prompt, back.answers[1].turns),
            json::parse(R"([{"role":"user","content":"Name a color."},
                            {"role":"assistant","content":"Blue \uFFFD"}])"));

  // a text prompt written as AlpacaEval
  const PromptSet plain = parse_prompt_set("{\"prompt\": \"Hi\"}\n", "p.jsonl");
  const json item =
      json::parse(format_answers(std::vector<Answer>{answer_for(plain.prompts[0], {"Hello"})},
                                 AnswerFormat::kAlpacaEval, options()))[0];
  EXPECT_EQ(item, json::parse(R"({"instruction": "Hi", "output": "Hello",
                                  "generator": "zephyr-expo-0.3", "dataset": "expo"})"));
}

TEST(Answers, AlpacaEvalRefusesWhatItCannotHold) {
  const PromptSet mt = parse_prompt_set(R"({"question_id": 5, "turns": ["a", "b"]})", "q.jsonl");
  EXPECT_ERROR(format_answers(std::vector<Answer>{answer_for(mt.prompts[0], {"x", "y"})},
                              AnswerFormat::kAlpacaEval, options()),
               "prompt 5", "2 turns", "--format jsonl");
  const PromptSet chat = parse_prompt_set(
      R"({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]})",
      "c.jsonl");
  EXPECT_ERROR(format_answers(std::vector<Answer>{answer_for(chat.prompts[0], {"x"})},
                              AnswerFormat::kAlpacaEval, options()),
               "prompt 0", "2 messages");
  // turn counts must match in every format
  EXPECT_ERROR(format_answers(std::vector<Answer>{answer_for(mt.prompts[0], {"x"})},
                              AnswerFormat::kMtBench, options()),
               "prompt 5 has 2 turn(s) but its answer has 1");
}

TEST(Answers, MtBenchFieldsAndRoundTrip) {
  const PromptSet questions = parse_prompt_set(
      R"({"question_id": 81, "category": "writing", "turns": ["Write.", "Again."]}
{"question_id": 82, "category": "math", "turns": ["1+1?", "2+2?"]})",
      "question.jsonl");
  std::vector<Answer> answers = {answer_for(questions.prompts[0], {"A1", "A2"}),
                                 answer_for(questions.prompts[1], {"2", "4"})};
  const std::string text = format_answers(answers, AnswerFormat::kMtBench, options());
  const auto lines = lines_of(text);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(keys_in_order(lines[0]), (std::vector<std::string>{"question_id", "answer_id",
                                                               "model_id", "choices", "tstamp"}));
  const json first = json::parse(lines[0]);
  EXPECT_EQ(first["question_id"], 81);  // the id's JSON type is kept (FastChat uses integers)
  EXPECT_EQ(first["model_id"], "zephyr-expo-0.3");
  EXPECT_EQ(first["choices"], json::parse(R"([{"index": 0, "turns": ["A1", "A2"]}])"));
  EXPECT_EQ(first["tstamp"], 1700000000.5);
  // answer ids: 22 characters of shortuuid's alphabet, fixed by (seed, question id); the value
  // comes from a Python transcription of the documented derivation
  EXPECT_EQ(first["answer_id"], "6gEgpNvJnnQWZPFbHw4YZh");
  EXPECT_EQ(mt_bench_answer_id(7, "81"), "z5AWL55v4zHFrf9m3JGy2B");
  EXPECT_NE(json::parse(lines[1])["answer_id"], first["answer_id"]);
  const std::string alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  for (char c : mt_bench_answer_id(3, "x")) EXPECT_NE(alphabet.find(c), std::string::npos);

  AnswerSet back = parse_answers(text, "model_answer.jsonl");
  EXPECT_EQ(back.format, AnswerFormat::kMtBench);
  ASSERT_EQ(back.answers.size(), 2u);
  EXPECT_EQ(back.answers[1].prompt.id_text, "82");
  EXPECT_EQ(back.answers[1].turns, (std::vector<std::string>{"2", "4"}));
  EXPECT_EQ(back.answers[1].generator, "zephyr-expo-0.3");
  EXPECT_TRUE(back.answers[1].prompt.messages.empty());  // the questions are not in the file

  attach_prompts(back, questions);
  EXPECT_EQ(back.answers[0].prompt.category, "writing");
  EXPECT_EQ(full_conversation(back.answers[0].prompt, back.answers[0].turns),
            json::parse(R"([{"role":"user","content":"Write."},{"role":"assistant","content":"A1"},
                            {"role":"user","content":"Again."},{"role":"assistant","content":"A2"}])"));

  // joining errors
  AnswerSet stray = parse_answers(
      R"({"question_id": 99, "model_id": "m", "choices": [{"index": 0, "turns": ["a", "b"]}]})",
      "answers.jsonl");
  EXPECT_ERROR(attach_prompts(stray, questions), "answers.jsonl", "id 99", "question.jsonl");
  AnswerSet short_answer = parse_answers(
      R"({"question_id": 81, "model_id": "m", "choices": [{"index": 0, "turns": ["a"]}]})",
      "answers.jsonl");
  EXPECT_ERROR(attach_prompts(short_answer, questions), "answers.jsonl", "id 81",
               "1 turn(s) but its prompt", "has 2");
}

TEST(Answers, JsonlFieldsAndRoundTrip) {
  const PromptSet prompts = parse_prompt_set(
      R"({"id": "t", "prompt": "Hello"}
{"id": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
{"id": 7, "instruction": "Translate", "input": "chat"}
)",
      "p.jsonl");
  const PromptSet mt = parse_prompt_set(
      R"({"question_id": 81, "category": "writing", "turns": ["W", "X"]})", "q.jsonl");
  std::vector<Answer> answers = {
      answer_for(prompts.prompts[0], {"Hi there"}), answer_for(prompts.prompts[1], {"Hey"}),
      answer_for(prompts.prompts[2], {"discussion"}), answer_for(mt.prompts[0], {"w", "x"})};
  answers[1].finish_reasons.clear();  // unknown: left out
  answers[1].output_tokens.clear();
  const std::string text = format_answers(answers, AnswerFormat::kJsonl, options());
  const auto lines = lines_of(text);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(keys_in_order(lines[0]),
            (std::vector<std::string>{"id", "prompt", "output", "finish_reason", "output_tokens",
                                      "generator"}));
  EXPECT_EQ(json::parse(lines[0]),
            json::parse(R"({"id": "t", "prompt": "Hello", "output": "Hi there",
      "finish_reason": "stop", "output_tokens": 10, "generator": "zephyr-expo-0.3"})"));
  EXPECT_EQ(keys_in_order(lines[1]),
            (std::vector<std::string>{"id", "messages", "output", "generator"}));
  EXPECT_EQ(json::parse(lines[2]),
            json::parse(R"({"id": 7, "instruction": "Translate", "input": "chat",
      "output": "discussion", "finish_reason": "stop", "output_tokens": 10, "generator": "zephyr-expo-0.3"})"));
  EXPECT_EQ(json::parse(lines[3]),
            json::parse(R"({"id": 81, "category": "writing", "turns": ["W", "X"],
      "output": ["w", "x"], "finish_reason": ["stop", "length"], "output_tokens": [10, 11],
      "generator": "zephyr-expo-0.3"})"));

  const AnswerSet back = parse_answers(text, "answers.jsonl");
  EXPECT_EQ(back.format, AnswerFormat::kJsonl);
  ASSERT_EQ(back.answers.size(), 4u);
  for (size_t i = 0; i < answers.size(); ++i) {
    EXPECT_EQ(back.answers[i].prompt.id, answers[i].prompt.id) << i;
    EXPECT_EQ(back.answers[i].prompt.messages, answers[i].prompt.messages) << i;
    EXPECT_EQ(back.answers[i].prompt.followups, answers[i].prompt.followups) << i;
    EXPECT_EQ(back.answers[i].turns, answers[i].turns) << i;
    EXPECT_EQ(back.answers[i].finish_reasons, answers[i].finish_reasons) << i;
    EXPECT_EQ(back.answers[i].output_tokens, answers[i].output_tokens) << i;
  }
  // an answers file is itself a prompt file
  const PromptSet again = parse_prompt_set(lines[0] + "\n" + lines[1] + "\n", "answers.jsonl");
  EXPECT_EQ(again.prompts[1].messages, prompts.prompts[1].messages);
}

TEST(Answers, WritesAtomically) {
  testing::TempDir dir;
  const PromptSet prompts = parse_prompt_set("{\"prompt\": \"a\"}\n", "p.jsonl");
  const std::vector<Answer> answers = {answer_for(prompts.prompts[0], {"b"})};
  const auto path = dir / "out" / "answers.jsonl";
  write_answers(path, answers, AnswerFormat::kJsonl, options());
  write_answers(path, answers, AnswerFormat::kJsonl, options());  // replaces
  EXPECT_EQ(read_answers(path).answers[0].turns[0], "b");
  EXPECT_EQ(read_answers(path).path, path);
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "out")) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "answers.jsonl");  // no temporary left behind
  }
  EXPECT_EQ(files, 1u);
}

TEST(Answers, ReaderErrorsNameTheLine) {
  EXPECT_ERROR(parse_answers("", "a.jsonl"), "a.jsonl", "empty");
  EXPECT_ERROR(parse_answers("[]", "a.json"), "a.json", "empty");
  EXPECT_ERROR(parse_answers("[{\"instruction\": \"a\", \"output\": \"b\"}, {\"instruction\": "
                             "\"c\"}]",
                             "model_outputs.json"),
               "model_outputs.json: item 1", "missing \"output\"");
  EXPECT_ERROR(parse_answers("[{\"output\": \"b\"}]", "model_outputs.json"),
               "model_outputs.json: item 0", "missing \"instruction\"");
  EXPECT_ERROR(parse_answers("[{\"instruction\": \"a\", \"output\": 3}]", "o.json"),
               "o.json: item 0", "\"output\" must be a string");
  EXPECT_ERROR(
      parse_answers("[{\"instruction\": \"a\", \"output\": \"b\", \"generator\": 1}]", "o.json"),
      "\"generator\" must be a string");
  EXPECT_ERROR(parse_answers("[{\"instruction\": \"a\", \"output\": \"b\"}", "o.json"), "o.json",
               "malformed JSON");

  const std::string good_mt =
      R"({"question_id": 1, "answer_id": "x", "model_id": "m", "choices": [{"index": 0, "turns": ["a"]}], "tstamp": 1.0})";
  EXPECT_ERROR(parse_answers(good_mt + "\n{\"question_id\": 2, \"choices\": []}\n", "m.jsonl"),
               "m.jsonl:2", "\"choices\" must be a non-empty list");
  EXPECT_ERROR(parse_answers("{\"choices\": [{\"turns\": [\"a\"]}]}\n", "m.jsonl"), "m.jsonl:1",
               "missing \"question_id\"");
  EXPECT_ERROR(
      parse_answers("{\"question_id\": 1.5, \"choices\": [{\"turns\": [\"a\"]}]}\n", "m.jsonl"),
      "m.jsonl:1", "\"question_id\" must be an integer or a non-empty string");
  EXPECT_ERROR(parse_answers("{\"question_id\": 1, \"choices\": [{\"index\": 0}]}\n", "m.jsonl"),
               "m.jsonl:1", "no \"turns\"");
  EXPECT_ERROR(parse_answers("{\"question_id\": 1, \"choices\": [{\"turns\": [1]}]}\n", "m.jsonl"),
               "m.jsonl:1", "must be a string");
  EXPECT_ERROR(parse_answers(good_mt + "\n" + good_mt + "\n", "m.jsonl"), "m.jsonl:2",
               "duplicate id 1", "also at m.jsonl:1");
  EXPECT_ERROR(parse_answers(good_mt + "\n{\"prompt\": \"a\", \"output\": \"b\"}\n", "m.jsonl"),
               "m.jsonl:2", "is not an MT-Bench answer");
  EXPECT_ERROR(
      parse_answers("{\"question_id\": 1, \"choices\": [{\"turns\": [\"a\"]}], \"tstamp\": "
                    "\"now\"}\n",
                    "m.jsonl"),
      "m.jsonl:1", "\"tstamp\" must be a number");

  EXPECT_ERROR(
      parse_answers("{\"prompt\": \"a\", \"output\": \"b\"}\n{\"prompt\": \"c\"}\n", "a.jsonl"),
      "a.jsonl:2", "missing \"output\"");
  EXPECT_ERROR(parse_answers("{\"prompt\": \"a\", \"output\": [\"b\", \"c\"]}\n", "a.jsonl"),
               "a.jsonl:1", "1 turn(s) but \"output\" has 2");
  EXPECT_ERROR(
      parse_answers("{\"prompt\": \"a\", \"output\": \"b\", \"finish_reason\": 1}\n", "a.jsonl"),
      "a.jsonl:1", "\"finish_reason\" must be a string or a list of strings");
  EXPECT_ERROR(
      parse_answers("{\"prompt\": \"a\", \"output\": \"b\", \"output_tokens\": -1}\n", "a.jsonl"),
      "a.jsonl:1", "\"output_tokens\" must be a non-negative integer");
  EXPECT_ERROR(parse_answers("{\"turns\": [\"a\", \"b\"], \"output\": [\"x\", \"y\"], "
                             "\"output_tokens\": [1]}\n",
                             "a.jsonl"),
               "a.jsonl:1", "1 token counts for 2 turn(s)");
  EXPECT_ERROR(parse_answers("{\"output\": \"b\"}\n", "a.jsonl"), "a.jsonl:1", "no prompt");
  EXPECT_ERROR(parse_answers("{\"prompt\": \"a\", \"output\": \"b\"}\n{oops\n", "a.jsonl"),
               "a.jsonl:2", "malformed JSON");
}

TEST(Answers, FileAndLineSizesAreBounded) {
  InputLimits small;
  small.max_line_bytes = 50;
  EXPECT_ERROR(parse_answers("{\"id\": 1, \"output\": \"" + std::string(100, 'x') + "\"}\n",
                             "a.jsonl", small),
               "a.jsonl:1", "longer than expo reads", "EXPO_INPUT_MAX_LINE");
  small.max_file_bytes = 10;
  testing::TempDir dir;
  write_text_file(dir / "big.jsonl", "{\"id\": 1, \"output\": \"abcdefgh\"}\n");
  EXPECT_ERROR(read_answers(dir / "big.jsonl", small), "big.jsonl", "EXPO_INPUT_MAX_FILE");
  EXPECT_ERROR(read_answers("/dev/zero", small), "/dev/zero", "byte 0 is a NUL byte");
}

}  // namespace
}  // namespace expo
