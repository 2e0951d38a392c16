#include "demo/demo_gold.h"

#include <unordered_map>

#include "core/error.h"
#include "eval/answers.h"

namespace expo {

AlphaResult GoldRow::as_result() const {
  AlphaResult r;
  r.alpha = alpha;
  r.ids = ids;
  for (size_t i = 0; i < scores.size(); ++i) {
    r.rewards.push_back(scores[i].value());
    const double words = static_cast<double>(word_count(answers[i]));
    r.answer_tokens.push_back(words);
    r.answer_chars.push_back(static_cast<double>(answers[i].size()));
  }
  return r;
}

GoldTruth gold_truth(const Prompt& prompt, const std::string& where) {
  GoldTruth truth;
  for (const char* key : {"claim", "answer"}) {
    const auto it = prompt.fields.find(key);
    if (it == prompt.fields.end() || !it->is_string())
      fail(where, ": prompt ", prompt.id_text, ": no \"", key,
           "\" string (the demo's prompts carry their ground truth)");
    (std::string(key) == "claim" ? truth.claim : truth.answer) = it->get<std::string>();
  }
  if (truth.claim.empty() || truth.answer.empty())
    fail(where, ": prompt ", prompt.id_text, ": empty \"claim\" or \"answer\"");
  return truth;
}

GoldRow score_answers_file(const std::filesystem::path& answers_file, const PromptSet& prompts,
                           double alpha) {
  const AnswerSet set = read_answers(answers_file);
  std::unordered_map<std::string, const Answer*> by_id;
  for (const Answer& a : set.answers) by_id[a.prompt.id_text] = &a;
  GoldRow row;
  row.alpha = alpha;
  for (const Prompt& p : prompts.prompts) {
    const auto it = by_id.find(p.id_text);
    if (it == by_id.end())
      fail(answers_file.string(), ": no answer to prompt ", p.id_text, " of ",
           prompts.path.string());
    if (it->second->turns.size() != 1)
      fail(answers_file.string(), ": prompt ", p.id_text, ": expected one answer, found ",
           it->second->turns.size());
    const std::string& text = it->second->turns[0];
    row.ids.push_back(p.id_text);
    row.answers.push_back(text);
    row.scores.push_back(gold_score(text, gold_truth(p, prompts.path.string())));
  }
  return row;
}

GoldSummary summarize_gold(const GoldRow& row) {
  GoldSummary g;
  const AlphaSummary s = summarize(row.as_result(), nullptr);
  g.mean = s.mean_reward;
  g.se = s.reward_se;
  g.words = s.mean_answer_tokens;
  const double n = static_cast<double>(row.scores.size());
  if (n == 0) return g;
  for (const GoldScore& x : row.scores) {
    g.correct += x.correct;
    g.polite += x.polite;
    g.concise += x.concise;
  }
  g.correct /= n;
  g.polite /= n;
  g.concise /= n;
  return g;
}

}  // namespace expo
