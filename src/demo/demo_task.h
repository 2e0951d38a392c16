#pragma once
// The gold score of the trained demo's task (demo/train/task.py, which defines it and trains
// the models on it): questions with a known answer, whose prompt records carry the ground
// truth as "claim" (the words that state the fact: "7 plus 5 is") and "answer" ("12").
// The score depends only on the answer's text and that ground truth, never on a reward model:
//
//   correct  the claim occurs at least once, and every occurrence is followed by a space and
//            the answer word, which ends the word (the next character, if any, is not an
//            ASCII letter or digit); matching ignores ASCII case
//   polite   the text is not blank and none of its words (runs of ASCII letters, lowercased)
//            is one of kRudeWords
//   concise  1 to kConciseWords words (runs of characters that are not whitespace)
//   gold = 0.5 correct + 0.25 polite + 0.25 concise
//
// tests/python/test_demo_task.py checks that this and task.py agree on many answers.
#include <string>
#include <string_view>

namespace expo {

struct GoldTruth {
  std::string claim, answer;
};

struct GoldScore {
  bool correct = false, polite = false, concise = false;
  double value() const { return 0.5 * correct + 0.25 * polite + 0.25 * concise; }
};

inline constexpr size_t kConciseWords = 15;
inline constexpr std::string_view kRudeWords[] = {"ugh",       "dumb",   "whatever", "yourself",
                                                  "bothering", "stupid", "annoying"};

GoldScore gold_score(std::string_view text, const GoldTruth& truth);

// Words as the concise rule counts them: runs of characters other than ASCII whitespace.
size_t word_count(std::string_view text);

}  // namespace expo
