// Prompt sets: every format the reader detects, every error naming the file and line (or list
// item), and shuffle/limit with a fixed order per seed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <csignal>
#include <thread>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "core/splitmix64.h"
#include "eval/prompt_set.h"
#include "test_util.h"

namespace expo {
namespace {

using nlohmann::json;
using testing::error_of;

TEST(PromptSet, JsonlTextMessagesAndInstructions) {
  const PromptSet set = parse_prompt_set(
      "{\"prompt\": \"Hello\"}\n"
      "\n"
      "{\"id\": \"q-7\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, "
      "{\"role\": \"user\", \"content\": \"Hi\"}]}\r\n"
      "{\"question_id\": 12, \"instruction\": \"Translate\", \"input\": \"chat\", \"extra\": 1}\n"
      "{\"instruction\": \"Sum 2+2\", \"input\": \"\"}",
      "p.jsonl");
  EXPECT_EQ(set.format, PromptFormat::kJsonl);
  ASSERT_EQ(set.prompts.size(), 4u);

  const Prompt& text = set.prompts[0];
  EXPECT_EQ(text.kind, PromptKind::kText);
  EXPECT_EQ(text.id, json(0));
  EXPECT_EQ(text.id_text, "0");
  EXPECT_EQ(text.messages, json::parse(R"([{"role":"user","content":"Hello"}])"));
  EXPECT_EQ(text.turn_count(), 1u);

  const Prompt& chat = set.prompts[1];
  EXPECT_EQ(chat.kind, PromptKind::kMessages);
  EXPECT_EQ(chat.id, json("q-7"));
  EXPECT_EQ(chat.id_text, "q-7");
  EXPECT_EQ(chat.messages.size(), 2u);
  EXPECT_EQ(chat.user_turn(0), "Hi");

  const Prompt& inst = set.prompts[2];
  EXPECT_EQ(inst.kind, PromptKind::kInstruction);
  EXPECT_EQ(inst.id, json(12));
  EXPECT_EQ(inst.id_text, "12");
  EXPECT_EQ(inst.instruction, "Translate");
  EXPECT_EQ(inst.input, "chat");
  EXPECT_EQ(inst.user_turn(0), "Translate\n\nchat");
  EXPECT_EQ(inst.fields["extra"], 1);
  EXPECT_EQ(inst.source_index, 2u);

  // an empty input adds nothing; the default id is the record index (blank lines not counted)
  EXPECT_EQ(set.prompts[3].user_turn(0), "Sum 2+2");
  EXPECT_EQ(set.prompts[3].id_text, "3");
}

TEST(PromptSet, MtBenchQuestions) {
  const PromptSet set = parse_prompt_set(
      R"({"question_id": 81, "category": "writing", "turns": ["Write a blog post.", "Rewrite it in limericks."]}
{"question_id": 101, "category": "reasoning", "turns": ["Who is taller?", "And now?"], "reference": ["A", "B"]}
)",
      "question.jsonl");
  EXPECT_EQ(set.format, PromptFormat::kMtBench);
  ASSERT_EQ(set.prompts.size(), 2u);
  const Prompt& q = set.prompts[0];
  EXPECT_EQ(q.kind, PromptKind::kTurns);
  EXPECT_EQ(q.id, json(81));
  EXPECT_EQ(q.category, "writing");
  EXPECT_EQ(q.turn_count(), 2u);
  EXPECT_EQ(q.user_turn(0), "Write a blog post.");
  EXPECT_EQ(q.user_turn(1), "Rewrite it in limericks.");
  EXPECT_EQ(set.prompts[1].fields["reference"], json::parse(R"(["A","B"])"));

  // the second turn is asked after the model's first answer
  const std::vector<std::string> answers = {"Post.", "Limericks."};
  EXPECT_EQ(conversation_for_turn(q, 0, {}), q.messages);
  EXPECT_EQ(conversation_for_turn(q, 1, answers), json::parse(R"([
    {"role":"user","content":"Write a blog post."},
    {"role":"assistant","content":"Post."},
    {"role":"user","content":"Rewrite it in limericks."}])"));
  EXPECT_EQ(full_conversation(q, answers).size(), 4u);
  EXPECT_EQ(full_conversation(q, answers).back()["content"], "Limericks.");
  EXPECT_EQ(full_conversation(q, std::vector<std::string>{"Post."}).size(), 2u);
  EXPECT_ERROR(conversation_for_turn(q, 1, {}), "prompt 81", "turn 2");
  EXPECT_ERROR(conversation_for_turn(q, 2, answers), "prompt 81", "no turn 3");
  EXPECT_ERROR(full_conversation(q, std::vector<std::string>{"a", "b", "c"}), "2 turn(s) but 3");

  EXPECT_EQ(mt_bench_temperature("writing"), 0.7);
  EXPECT_EQ(mt_bench_temperature("stem"), 0.1);
  EXPECT_EQ(mt_bench_temperature("math"), 0.0);
  EXPECT_FALSE(mt_bench_temperature("poetry").has_value());
}

TEST(PromptSet, AlpacaEvalList) {
  const PromptSet set = parse_prompt_set(
      "\xEF\xBB\xBF[\n"
      " {\"instruction\": \"What is ExPO?\", \"dataset\": \"helpful_base\", \"output\": \"x\","
      " \"generator\": \"gpt4\"},\n"
      " {\"instruction\": \"Name a color.\", \"dataset\": \"oasst\"}\n]",
      "alpaca_eval.json");
  EXPECT_EQ(set.format, PromptFormat::kAlpacaEval);
  ASSERT_EQ(set.prompts.size(), 2u);
  EXPECT_EQ(set.prompts[0].id, json(0));
  EXPECT_EQ(set.prompts[1].id_text, "1");
  EXPECT_EQ(set.prompts[0].instruction, "What is ExPO?");
  EXPECT_EQ(set.prompts[1].fields["dataset"], "oasst");
  EXPECT_EQ(set.prompts[1].user_turn(0), "Name a color.");
}

TEST(PromptSet, ReadsFilesAndNamesThem) {
  testing::TempDir dir;
  write_text_file(dir / "p.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": 5}\n");
  EXPECT_ERROR(read_prompt_set(dir / "p.jsonl"), (dir / "p.jsonl").string() + ":2",
               "\"prompt\" must be a string, got an integer");
  write_text_file(dir / "q.jsonl", "{\"prompt\": \"a\"}\n");
  const PromptSet set = read_prompt_set(dir / "q.jsonl");
  EXPECT_EQ(set.path, dir / "q.jsonl");
  EXPECT_ERROR(read_prompt_set(dir / "missing.jsonl"), "missing.jsonl", "cannot open");
}

// Before the limits, --prompts /dev/zero grew until std::bad_alloc and a 50 MB one-line prompt
// took 1.6 GB to parse.
TEST(PromptSet, FileAndLineSizesAreBounded) {
  testing::TempDir dir;
  InputLimits small;
  small.max_file_bytes = 1000;
  small.max_line_bytes = 100;
  write_text_file(dir / "big.jsonl", "{\"prompt\": \"" + std::string(2000, 'a') + "\"}\n");
  EXPECT_ERROR(read_prompt_set(dir / "big.jsonl", small), (dir / "big.jsonl").string(),
               "larger than expo reads (2015 bytes)", "EXPO_INPUT_MAX_FILE=SIZE");
  write_text_file(dir / "long.jsonl",
                  "{\"prompt\": \"a\"}\n{\"prompt\": \"" + std::string(200, 'a') + "\"}\n");
  EXPECT_ERROR(read_prompt_set(dir / "long.jsonl", small), (dir / "long.jsonl").string() + ":2",
               "longer than expo reads (214 bytes)", "limit 100 bytes", "EXPO_INPUT_MAX_LINE");
  EXPECT_EQ(read_prompt_set(dir / "long.jsonl").prompts.size(), 2u);  // the defaults read it
  // A device of NUL bytes stops at the first one; any other endless stream at the limit.
  EXPECT_ERROR(read_prompt_set("/dev/zero", small), "/dev/zero", "byte 0 is a NUL byte",
               "not a JSON or JSONL text file");
  const fs::path fifo = dir / "endless";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto old_sigpipe = std::signal(SIGPIPE, SIG_IGN);  // the reader stops first
  std::thread writer([&] {
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    const std::string chunk(4096, 'a');
    while (fd >= 0 && ::write(fd, chunk.data(), chunk.size()) > 0) {
    }
    if (fd >= 0) ::close(fd);
  });
  EXPECT_ERROR(read_prompt_set(fifo, small), "endless", "larger than expo reads",
               "more than 1000 bytes");
  writer.join();
  std::signal(SIGPIPE, old_sigpipe);
  ::setenv("EXPO_INPUT_MAX_LINE", "150", 1);
  EXPECT_EQ(InputLimits::from_environment().max_line_bytes, 150u);
  EXPECT_ERROR(read_prompt_set(dir / "long.jsonl"), "EXPO_INPUT_MAX_LINE");
  ::setenv("EXPO_INPUT_MAX_LINE", "1KiB", 1);
  EXPECT_EQ(read_prompt_set(dir / "long.jsonl").prompts.size(), 2u);
  ::unsetenv("EXPO_INPUT_MAX_LINE");
}

TEST(PromptSet, ErrorsNameTheLine) {
  // malformed JSON
  EXPECT_ERROR(
      parse_prompt_set("{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n{\"prompt\": \n", "f.jsonl"),
      "f.jsonl:3", "malformed JSON");
  // a pretty-printed object is not JSONL
  EXPECT_ERROR(parse_prompt_set("{\n  \"prompt\": \"a\"\n}\n", "f.jsonl"), "f.jsonl:1",
               "one complete JSON object");
  // missing fields
  EXPECT_ERROR(parse_prompt_set("{\"prompt\": \"a\"}\n{\"text\": \"b\"}\n", "f.jsonl"), "f.jsonl:2",
               "no prompt", "\"messages\"");
  // wrong types
  EXPECT_ERROR(parse_prompt_set("[1]\n", "f.jsonl"), "f.jsonl: item 0",
               "expected a JSON object, got an integer");
  EXPECT_ERROR(parse_prompt_set("\"just text\"\n", "f.jsonl"), "f.jsonl:1",
               "expected a JSON object, got a string");
  EXPECT_ERROR(parse_prompt_set("{\"prompt\": \"a\", \"id\": 1.5}\n", "f.jsonl"), "f.jsonl:1",
               "\"id\" must be a string or an integer, got a number");
  EXPECT_ERROR(parse_prompt_set("{\"prompt\": \"\"}\n", "f.jsonl"), "f.jsonl:1",
               "\"prompt\" is empty");
  EXPECT_ERROR(parse_prompt_set("{\"prompt\": \"a\", \"messages\": []}\n", "f.jsonl"), "f.jsonl:1",
               "both \"prompt\" and \"messages\"");
  EXPECT_ERROR(parse_prompt_set("{\"messages\": {\"role\": \"user\"}}\n", "f.jsonl"), "f.jsonl:1",
               "\"messages\" must be a list");
  EXPECT_ERROR(parse_prompt_set("{\"messages\": []}\n", "f.jsonl"), "\"messages\" is empty");
  EXPECT_ERROR(
      parse_prompt_set("{\"prompt\":\"x\"}\n{\"messages\": [{\"role\": \"user\"}]}\n", "f.jsonl"),
      "f.jsonl:2: messages[0]", "missing \"content\"");
  EXPECT_ERROR(parse_prompt_set("{\"messages\": [{\"role\": 3, \"content\": \"a\"}]}\n", "f.jsonl"),
               "messages[0]", "\"role\" must be a non-empty string");
  EXPECT_ERROR(
      parse_prompt_set("{\"messages\": [{\"role\": \"user\", \"content\": [1]}]}\n", "f.jsonl"),
      "messages[0]", "\"content\" must be a string, got a list");
  EXPECT_ERROR(parse_prompt_set("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, "
                                "{\"role\": \"assistant\", \"content\": \"b\"}]}\n",
                                "f.jsonl"),
               "f.jsonl:1", "must end with a \"user\" message");
  EXPECT_ERROR(parse_prompt_set("{\"instruction\": \"a\", \"input\": 3}\n", "f.jsonl"),
               "\"input\" must be a string");
  EXPECT_ERROR(parse_prompt_set("{\"question_id\": 1, \"turns\": \"a\"}\n", "f.jsonl"), "f.jsonl:1",
               "\"turns\" must be a list of strings");
  EXPECT_ERROR(parse_prompt_set("{\"question_id\": 1, \"turns\": [\"a\", 2]}\n", "f.jsonl"),
               "f.jsonl:1", "\"turns[1]\" must be a string");
  EXPECT_ERROR(parse_prompt_set("{\"question_id\": 1, \"turns\": []}\n", "f.jsonl"),
               "\"turns\" is empty");
  EXPECT_ERROR(
      parse_prompt_set("{\"question_id\": 1, \"turns\": [\"a\"], \"category\": 2}\n", "f.jsonl"),
      "\"category\" must be a string");
  EXPECT_ERROR(parse_prompt_set("{\"id\": 1, \"question_id\": 2, \"prompt\": \"a\"}\n", "f.jsonl"),
               "\"id\" (1) and \"question_id\" (2) differ");
  // one format per file
  EXPECT_ERROR(parse_prompt_set("{\"question_id\": 1, \"turns\": [\"a\"]}\n{\"prompt\": \"b\"}\n",
                                "f.jsonl"),
               "f.jsonl:2", "is not an MT-Bench question", "f.jsonl:1 is");
  // empty files
  EXPECT_ERROR(parse_prompt_set("", "f.jsonl"), "f.jsonl", "empty");
  EXPECT_ERROR(parse_prompt_set(" \n\n", "f.jsonl"), "f.jsonl", "empty");
  EXPECT_ERROR(parse_prompt_set("[]", "f.json"), "f.json", "empty");
  // duplicate ids, an explicit id against an index id included
  EXPECT_ERROR(parse_prompt_set("{\"id\": \"a\", \"prompt\": \"x\"}\n{\"prompt\": \"y\"}\n"
                                "{\"id\": \"a\", \"prompt\": \"z\"}\n",
                                "f.jsonl"),
               "f.jsonl:3", "duplicate id \"a\"", "also at f.jsonl:1");
  EXPECT_ERROR(
      parse_prompt_set("{\"prompt\": \"x\"}\n{\"id\": \"0\", \"prompt\": \"y\"}\n", "f.jsonl"),
      "f.jsonl:2", "duplicate id");
  // AlpacaEval lists: items named by index
  EXPECT_ERROR(parse_prompt_set("[{\"instruction\": \"a\"}, {\"prompt\": \"b\"}]", "f.json"),
               "f.json: item 1", "missing \"instruction\"");
  EXPECT_ERROR(parse_prompt_set("[{\"instruction\": \"a\"}, {\"instruction\": 2}]", "f.json"),
               "f.json: item 1", "\"instruction\" must be a string");
  EXPECT_ERROR(parse_prompt_set("[{\"instruction\": \"a\"},", "f.json"), "f.json",
               "malformed JSON");
  EXPECT_ERROR(parse_prompt_set("[{\"instruction\": \"a\", \"id\": 4}, {\"instruction\": \"b\", "
                                "\"id\": 4}]",
                                "f.json"),
               "f.json: item 1", "duplicate id 4", "also at f.json: item 0");
}

PromptSet numbered(size_t n) {
  std::string text;
  for (size_t i = 0; i < n; ++i) text += "{\"prompt\": \"p" + std::to_string(i) + "\"}\n";
  return parse_prompt_set(text, "n.jsonl");
}

std::vector<int> order_of(const PromptSet& set) {
  std::vector<int> order;
  for (const Prompt& p : set.prompts) order.push_back(std::stoi(p.id_text));
  return order;
}

TEST(SelectPrompts, SplitMix64MatchesTheReference) {
  // Vigna's splitmix64.c with seed 1234567 starts 6457827717110365317, 3203168211198807973.
  SplitMix64 rng(1234567);
  EXPECT_EQ(rng.next(), 6457827717110365317ULL);
  EXPECT_EQ(rng.next(), 3203168211198807973ULL);
}

TEST(SelectPrompts, ShuffleOrderIsFixedBySeed) {
  // The expected orders come from an independent Python transcription of the documented
  // algorithm (SplitMix64 + Fisher-Yates from the top, rejection-sampled bounds).
  PromptSet a = numbered(10);
  select_prompts(a, std::nullopt, true, 42);
  EXPECT_EQ(order_of(a), (std::vector<int>{0, 9, 5, 8, 6, 4, 7, 2, 1, 3}));
  PromptSet b = numbered(10);
  select_prompts(b, std::nullopt, true, 7);
  EXPECT_EQ(order_of(b), (std::vector<int>{8, 1, 5, 9, 0, 4, 3, 2, 6, 7}));
  PromptSet c = numbered(5);
  select_prompts(c, std::nullopt, true, 0);
  EXPECT_EQ(order_of(c), (std::vector<int>{2, 3, 1, 4, 0}));
}

TEST(SelectPrompts, ShuffleThenLimit) {
  PromptSet a = numbered(10);
  select_prompts(a, 3, true, 42);
  EXPECT_EQ(order_of(a), (std::vector<int>{0, 9, 5}));
  PromptSet b = numbered(10);
  select_prompts(b, 3, false, 42);  // no shuffle: the first three
  EXPECT_EQ(order_of(b), (std::vector<int>{0, 1, 2}));
  PromptSet c = numbered(4);
  select_prompts(c, 100, false, 0);  // a limit above the size keeps everything
  EXPECT_EQ(c.prompts.size(), 4u);
  PromptSet d = numbered(4);
  EXPECT_ERROR(select_prompts(d, 0, false, 0), "--limit must be at least 1");
  PromptSet one = numbered(1);
  select_prompts(one, std::nullopt, true, 9);
  EXPECT_EQ(order_of(one), (std::vector<int>{0}));
}

}  // namespace
}  // namespace expo
