#pragma once
// Gold scores of a search's answers, for the trained demo: each answer of an answers file
// (eval/answers.h) scored against the ground truth its prompt carries ("claim" and "answer"
// fields of the prompt record; demo_task.h), in the prompt set's order.
#include <filesystem>
#include <string>
#include <vector>

#include "demo/demo_task.h"
#include "eval/alpha_stats.h"
#include "eval/prompt_set.h"

namespace expo {

struct GoldRow {
  double alpha = 0;
  std::vector<std::string> ids;      // the prompt set's order
  std::vector<std::string> answers;  // the answer texts
  std::vector<GoldScore> scores;
  // The gold scores as a result with the same statistics as rewards (mean, s.e., paired
  // differences by prompt): `rewards` holds the gold values, lengths are in words.
  AlphaResult as_result() const;
};

// The truth of a prompt: its record's "claim" and "answer" strings; errors name `where` and
// the prompt id when either is missing or not a string.
GoldTruth gold_truth(const Prompt& prompt, const std::string& where);

// Reads `answers_file` and scores it. Every prompt of `prompts` must be answered, with one
// turn; errors name the file and the prompt id.
GoldRow score_answers_file(const std::filesystem::path& answers_file, const PromptSet& prompts,
                           double alpha);

struct GoldSummary {
  double mean = AlphaSummary::kNaN, se = AlphaSummary::kNaN;
  double correct = 0, polite = 0, concise = 0;  // fractions of the answers
  double words = 0;                             // mean words per answer
};
GoldSummary summarize_gold(const GoldRow& row);

}  // namespace expo
