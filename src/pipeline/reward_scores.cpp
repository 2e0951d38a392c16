#include "pipeline/reward_scores.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/atomic_write.h"
#include "core/error.h"
#include "core/utf8.h"
#include "model/generator.h"
#include "model/scorer.h"

namespace expo {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string answer_name(const Answer& a) { return "answer to prompt " + a.prompt.id_text; }

}  // namespace

std::vector<int32_t> encode_for_reward(const PromptEncoder& reward_encoder, const Answer& answer) {
  if (answer.turns.empty()) fail(answer_name(answer), ": no answer to score");
  if (!reward_encoder.has_chat_template())
    fail("reward model tokenizer ", reward_encoder.tokenizer().folder().string(),
         " has no chat template: expo renders the conversation with the reward model's own "
         "template (tokenizer_config.json chat_template or chat_template.jinja)");
  return reward_encoder.encode_messages(full_conversation(answer.prompt, answer.turns), false);
}

LocalRewardModel LocalRewardModel::load(const ModelSource& source, ThreadPool& pool) {
  const std::string& spec = source.checkpoint().spec();
  const ModelConfig& config = source.config();
  if (!config.is_reward_model)
    fail("--reward-model ", spec, ": ", config.architecture,
         " is not a reward model (expected a *ForSequenceClassification or "
         "InternLM2ForRewardModel)");
  LocalRewardModel rm;
  rm.encoder = std::make_unique<PromptEncoder>(source.folder());
  if (!rm.encoder->has_chat_template())
    fail("--reward-model ", spec,
         ": its tokenizer has no chat template; expo builds the reward model's input with the "
         "reward model's own template");
  rm.weights = LoadedModel::load(source, pool);
  rm.model = std::make_unique<Transformer>(*rm.weights);
  return rm;
}

std::vector<double> score_answers_local(LocalRewardModel& reward_model,
                                        std::span<const Answer> answers, ThreadPool& pool,
                                        std::vector<std::string>& warnings,
                                        const std::function<void(size_t done)>& on_done) {
  const uint64_t context = model_context_length(reward_model.weights->config());
  std::vector<double> rewards(answers.size(), kNaN);
  std::vector<std::vector<int32_t>> sequences;
  std::vector<size_t> owner;
  for (size_t i = 0; i < answers.size(); ++i) {
    std::vector<int32_t> tokens;
    try {
      tokens = encode_for_reward(*reward_model.encoder, answers[i]);
    } catch (const Error& e) {
      fail(answer_name(answers[i]), ": ", e.what());
    }
    if (tokens.size() > context) {
      warnings.push_back(str(answer_name(answers[i]), ": ", tokens.size(),
                             " tokens, more than the reward model's context of ", context,
                             "; not scored"));
      continue;
    }
    sequences.push_back(std::move(tokens));
    owner.push_back(i);
  }
  const auto rows = score_sequences(*reward_model.model, sequences, pool, {}, on_done);
  for (size_t k = 0; k < rows.size(); ++k) {
    const double r = rows[k].at(0);
    if (std::isfinite(r))
      rewards[owner[k]] = r;
    else
      warnings.push_back(
          str(answer_name(answers[owner[k]]), ": the reward is not finite (", r, ")"));
  }
  return rewards;
}

std::vector<double> score_answers_remote(OpenAIClient& client, const std::string& model,
                                         std::span<const Answer> answers,
                                         const std::function<void(size_t done)>& on_done) {
  std::vector<ScoreInput> inputs;
  for (const auto& a : answers) {
    if (a.turns.empty()) fail(answer_name(a), ": no answer to score");
    ScoreInput in;
    in.messages = full_conversation(a.prompt, a.turns);
    in.label = answer_name(a);
    inputs.push_back(std::move(in));
  }
  size_t done = 0;
  auto rewards = client.score_all(model, inputs, [&](size_t, double) {
    if (on_done) on_done(++done);
  });
  for (double& r : rewards)
    if (!std::isfinite(r)) r = kNaN;
  return rewards;
}

AlphaResult answers_result(double alpha, std::span<const Answer> answers,
                           std::span<const double> rewards, const Tokenizer* tokenizer) {
  if (rewards.size() != answers.size())
    fail("internal: ", rewards.size(), " rewards for ", answers.size(), " answers");
  AlphaResult r;
  r.alpha = alpha;
  for (size_t i = 0; i < answers.size(); ++i) {
    const Answer& a = answers[i];
    r.ids.push_back(a.prompt.id_text);
    r.rewards.push_back(std::isfinite(rewards[i]) ? rewards[i] : kNaN);
    if (!std::isfinite(rewards[i])) ++r.failed;
    double tokens = 0, chars = 0;
    const bool counted = a.output_tokens.size() == a.turns.size() && !a.turns.empty();
    for (size_t t = 0; t < a.turns.size(); ++t) {
      chars += static_cast<double>(code_point_count(a.turns[t]));
      if (counted)
        tokens += static_cast<double>(a.output_tokens[t]);
      else if (tokenizer)
        tokens += static_cast<double>(tokenizer->encode(a.turns[t], false).size());
    }
    if (!counted && !tokenizer) tokens = kNaN;
    r.answer_tokens.push_back(tokens);
    r.answer_chars.push_back(chars);
    bool truncated = false;
    for (const auto& f : a.finish_reasons) truncated |= f == "length";
    r.truncated += truncated;
  }
  return r;
}

void write_rewards(const std::filesystem::path& path, std::span<const Answer> answers,
                   const AlphaResult& result) {
  std::string text;
  for (size_t i = 0; i < answers.size(); ++i) {
    nlohmann::ordered_json line;
    line["id"] = answers[i].prompt.id;
    line["reward"] = std::isfinite(result.rewards[i]) ? nlohmann::ordered_json(result.rewards[i])
                                                      : nlohmann::ordered_json(nullptr);
    line["answer_tokens"] = std::isfinite(result.answer_tokens[i])
                                ? nlohmann::ordered_json(result.answer_tokens[i])
                                : nlohmann::ordered_json(nullptr);
    line["answer_chars"] = result.answer_chars[i];
    const auto& f = answers[i].finish_reasons;
    if (f.size() == 1)
      line["finish_reason"] = f[0];
    else if (!f.empty())
      line["finish_reason"] = f;
    text += line.dump() + "\n";
  }
  write_file_atomically(path, text);
}

}  // namespace expo
