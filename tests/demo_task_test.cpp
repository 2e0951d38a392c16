// The trained demo's gold score (src/demo/demo_task.h) against demo/train/task.py, the
// definition the demo's models were trained on: tests/golden/demo/gold_cases.jsonl holds
// answers with task.py's verdicts (tests/python/make_demo_gold_cases.py writes it), and the
// demo's report (demo_gold.h, demo_report.h) on a small answers file.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "demo/demo_gold.h"
#include "demo/demo_report.h"
#include "demo/demo_task.h"
#include "eval/plot.h"
#include "test_util.h"

namespace expo {
namespace {

using testing::TempDir;

TEST(DemoTask, AgreesWithTheTrainingDefinition) {
  std::ifstream in(std::string(EXPO_GOLDEN_DIR) + "/demo/gold_cases.jsonl");
  ASSERT_TRUE(in) << "tests/golden/demo/gold_cases.jsonl is missing";
  std::string line;
  size_t n = 0, correct = 0, impolite = 0, long_ones = 0;
  while (std::getline(in, line)) {
    const auto c = nlohmann::json::parse(line);
    const std::string text = c["text"];
    const GoldScore s = gold_score(text, {c["claim"], c["answer"]});
    EXPECT_EQ(s.correct, c["correct"].get<bool>()) << "correct: " << c.dump();
    EXPECT_EQ(s.polite, c["polite"].get<bool>()) << "polite: " << c.dump();
    EXPECT_EQ(s.concise, c["concise"].get<bool>()) << "concise: " << c.dump();
    EXPECT_DOUBLE_EQ(s.value(), c["gold"].get<double>()) << c.dump();
    ++n;
    correct += s.correct;
    impolite += !s.polite;
    long_ones += !s.concise;
  }
  EXPECT_GT(n, 1000u);
  // the cases exercise every verdict both ways
  EXPECT_GT(correct, 100u);
  EXPECT_LT(correct, n - 100);
  EXPECT_GT(impolite, 100u);
  EXPECT_GT(long_ones, 100u);
}

TEST(DemoTask, Rules) {
  const GoldTruth t{"7 plus 5 is", "12"};
  EXPECT_EQ(gold_score("Sure! 7 plus 5 is 12.", t).value(), 1.0);
  EXPECT_TRUE(gold_score("7 PLUS 5 IS 12", t).correct);
  EXPECT_FALSE(gold_score("7 plus 5 is 123.", t).correct);       // a longer number
  EXPECT_TRUE(gold_score("7 plus 5 is 12\xc3\xa9", t).correct);  // non-ASCII ends the word
  EXPECT_FALSE(gold_score("7 plus 5 is 12. 7 plus 5 is 11.", t).correct);  // every claim counts
  EXPECT_FALSE(gold_score("12", t).correct);                               // no claim
  EXPECT_FALSE(gold_score("7 plus 5 is  12", t).correct);                  // one space exactly
  EXPECT_FALSE(gold_score("Ugh, fine. 7 plus 5 is 12.", t).polite);
  EXPECT_TRUE(gold_score("Thumbdumb. 7 plus 5 is 12.", t).polite);  // a whole word only
  EXPECT_FALSE(gold_score(" \t\n", t).polite);
  EXPECT_FALSE(gold_score("", t).concise);
  EXPECT_EQ(gold_score("", t).value(), 0.0);
  EXPECT_TRUE(gold_score("a b c d e f g h i j k l m n o", t).concise);     // 15 words
  EXPECT_FALSE(gold_score("a b c d e f g h i j k l m n o p", t).concise);  // 16
  EXPECT_TRUE(gold_score("a\xc2\xa0"
                         "b c d e f g h i j k l m n o p",
                         t)
                  .concise)
      << "U+00A0 is not a separator, so a and b are one word: 15 words";
}

TEST(DemoTask, ReportFromAnswersFiles) {
  TempDir dir;
  const auto prompts_path = dir.path() / "prompts.jsonl";
  write_text_file(prompts_path,
                  "{\"id\": 0, \"prompt\": \"What is 7 plus 5?\", \"claim\": \"7 plus 5 is\", "
                  "\"answer\": \"12\"}\n"
                  "{\"id\": 1, \"prompt\": \"What color is a lime?\", \"claim\": \"A lime is\", "
                  "\"answer\": \"green\"}\n");
  const PromptSet prompts = read_prompt_set(prompts_path);
  auto answers = [&](const std::string& name, const std::string& a0, const std::string& a1) {
    const auto path = dir.path() / name;
    write_text_file(path,
                    nlohmann::json{{"id", 0}, {"prompt", "q0"}, {"output", a0}}.dump() + "\n" +
                        nlohmann::json{{"id", 1}, {"prompt", "q1"}, {"output", a1}}.dump() + "\n");
    return path;
  };
  const GoldRow zero = score_answers_file(
      answers("a0.jsonl", "Whatever. 7 plus 5 is 12.", "Sorry, I do not know."), prompts, 0);
  const GoldRow two = score_answers_file(
      answers("a2.jsonl", "Sure! 7 plus 5 is 12.", "A lime is green."), prompts, 2);
  EXPECT_EQ(zero.scores[0].value(), 0.75);
  EXPECT_EQ(zero.scores[1].value(), 0.5);
  const GoldSummary s = summarize_gold(two);
  EXPECT_DOUBLE_EQ(s.mean, 1.0);
  EXPECT_DOUBLE_EQ(s.correct, 1.0);

  DemoReport report;
  report.pair = "dpo-10";
  report.best_alpha = 2;
  for (double a : {0.0, 2.0}) {
    AlphaSummary r;
    r.alpha = a;
    r.mean_reward = 1 + a;
    r.reward_se = 0.1;
    report.rewards.push_back(r);
  }
  report.gold = {zero, two};
  const PairedDifference gain = gold_gain(report);
  EXPECT_DOUBLE_EQ(gain.mean, (0.25 + 0.5) / 2);
  EXPECT_EQ(gain.n, 2u);
  const std::string table = format_demo_table(report);
  EXPECT_NE(table.find("dpo-10 a=2"), std::string::npos) << table;
  EXPECT_NE(table.find("<- best by reward"), std::string::npos) << table;
  const auto j = demo_json(report);
  EXPECT_EQ(j["best_alpha"], 2.0);
  EXPECT_DOUBLE_EQ(j["alphas"][1]["gold"].get<double>(), 1.0);
  EXPECT_FALSE(j.contains("reference"));
  const std::string side =
      format_side_by_side(report, {"What is 7 plus 5?", "What color is a lime?"}, 2);
  EXPECT_NE(side.find("[gold 0.75] Whatever. 7 plus 5 is 12."), std::string::npos) << side;

  // a prompt without its truth, an unanswered prompt: errors that name them
  write_text_file(dir.path() / "bare.jsonl", "{\"id\": 0, \"prompt\": \"hi\"}\n");
  const PromptSet bare = read_prompt_set(dir.path() / "bare.jsonl");
  EXPECT_ERROR(score_answers_file(dir.path() / "a0.jsonl", bare, 0), "no \"claim\" string",
               "bare.jsonl");
  write_text_file(dir.path() / "short.jsonl",
                  "{\"id\": 0, \"prompt\": \"q\", \"output\": \"x\"}\n");
  EXPECT_ERROR(score_answers_file(dir.path() / "short.jsonl", prompts, 0), "short.jsonl",
               "no answer to prompt 1");
}

TEST(DemoTask, PlotWithReferenceLines) {
  std::vector<PlotSeries> panels(2);
  panels[0] = {
      "mean reward", "#1f77b4", {{0, 1, 0.1}, {1, 2, 0.1}, {10, 0.5, 0.1}}, {{"dpo-full", 1.5}}};
  panels[1] = {"gold <score>",
               "#9467bd",
               {{0, 0.7, 0.02}, {1, 0.8, 0.02}, {10, 0.4, 0.02}},
               {{"dpo-full", 0.75}, {"off the chart", 99}}};
  const std::string svg = render_plot(panels, 1, "t");
  EXPECT_NE(svg.find("gold &lt;score&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">dpo-full<"), std::string::npos);
  EXPECT_EQ(svg.find("off the chart"), std::string::npos);
  EXPECT_NE(svg.find("log scale"), std::string::npos);
  EXPECT_THROW(render_plot({}, 0, "t"), Error);
}

}  // namespace
}  // namespace expo
