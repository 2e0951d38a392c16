// The continuous batch under `expo serve` and generate(): sequences with different settings
// share steps and still get exactly what each gets alone, joining between steps changes
// nothing, cancelling frees the slot, logprobs match a slow float64 reference, and a prompt's
// random stream is a function of its tokens alone. Then the text released to a streaming
// client (serve/answer_text): never a partial character, never a possible stop string.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/splitmix64.h"
#include "model/continuous_batch.h"
#include "model/generator.h"
#include "serve/answer_text.h"
#include "test_util.h"

namespace expo {
namespace {

using testing::TempDir;

struct TinyModel {
  TempDir dir;
  ThreadPool pool{2};
  std::unique_ptr<LoadedModel> loaded;
  std::unique_ptr<Transformer> model;
  TinyModel() {
    RandomLlamaSpec spec = testing::tiny_llama(2, 64, 96, 4, 2, 128);
    spec.dtype = DType::BF16;
    write_random_llama(dir / "m", spec, 11);
    loaded = LoadedModel::load(ModelSource::open((dir / "m").string()), pool);
    model = std::make_unique<Transformer>(*loaded);
  }
};

SequenceSpec spec_for(size_t k) {
  SequenceSpec s;
  for (size_t j = 0; j < 3 + (k * 5) % 17; ++j)
    s.prompt.push_back(static_cast<int32_t>((29 * k + 13 * j + 3) % 128));
  s.stream = prompt_stream(s.prompt);
  // Every sequence its own settings: greedy and sampled, penalties, lengths, seeds.
  s.sampling = k % 3 == 0 ? SamplingParams{} : SamplingParams{0.7 + 0.1 * (k % 4),
                                                              static_cast<int>(k % 2 ? 20 : 0),
                                                              0.9,
                                                              0.0,
                                                              0.1,
                                                              0.0,
                                                              1.0,
                                                              100 + k};
  s.max_new_tokens = 4 + k % 9;
  s.stop_ids = {static_cast<int32_t>(k % 128)};
  s.logprobs = k % 2 ? 3 : -1;
  return s;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::string reason;
  std::vector<double> logprobs;
  bool operator==(const Outcome&) const = default;
};

// Runs specs through one batch; sequence k joins after `join_step[k]` steps.
std::vector<Outcome> run_batch(TinyModel& m, const std::vector<SequenceSpec>& specs,
                               uint64_t max_batch, const std::vector<size_t>& join_step = {}) {
  BatchLimits limits;
  limits.max_batch = max_batch;
  limits.prefill_chunk = 4;
  ContinuousBatch batch(*m.model, limits);
  std::vector<Outcome> out(specs.size());
  std::map<uint64_t, size_t> owner;
  std::vector<StepEvent> events;
  size_t next = 0, step = 0, done = 0;
  while (done < specs.size()) {
    while (next < specs.size() && batch.has_room() &&
           (join_step.empty() || join_step[next] <= step)) {
      owner[batch.add(specs[next])] = next;
      ++next;
    }
    batch.step(m.pool, events);
    ++step;
    for (const auto& e : events) {
      Outcome& o = out[owner.at(e.id)];
      if (e.token >= 0 && specs[owner.at(e.id)].logprobs >= 0) {
        EXPECT_EQ(e.logprobs.token, e.token);
        o.logprobs.push_back(e.logprobs.logprob);
      }
      if (!e.finish_reason.empty()) {
        o.tokens = e.tokens;
        o.reason = e.finish_reason;
        ++done;
      }
    }
  }
  return out;
}

TEST(ContinuousBatch, MixedSettingsShareStepsAndMatchRunsAlone) {
  TinyModel m;
  std::vector<SequenceSpec> specs;
  for (size_t k = 0; k < 11; ++k) specs.push_back(spec_for(k));
  std::vector<Outcome> alone;
  for (const auto& s : specs) alone.push_back(run_batch(m, {s}, 1)[0]);
  for (const auto& o : alone) EXPECT_FALSE(o.tokens.empty());
  EXPECT_EQ(run_batch(m, specs, 16), alone);
  EXPECT_EQ(run_batch(m, specs, 3), alone);
  // Joining at staggered steps, as requests reach a server, changes nothing either.
  EXPECT_EQ(run_batch(m, specs, 16, {0, 0, 1, 2, 2, 3, 5, 8, 8, 9, 13}), alone);
}

TEST(ContinuousBatch, GenerateEqualsTheBatchAndStreamsComeFromThePrompt) {
  TinyModel m;
  SequenceSpec s = spec_for(4);
  const Outcome direct = run_batch(m, {s}, 1)[0];
  GenerationOptions options;
  options.sampling = s.sampling;
  options.max_new_tokens = s.max_new_tokens;
  options.stop_ids = s.stop_ids;
  std::vector<GenerationRequest> requests = {
      {spec_for(1).prompt, prompt_stream(spec_for(1).prompt)}, {s.prompt, prompt_stream(s.prompt)}};
  std::vector<int32_t> got;
  generate(*m.model, requests, options, m.pool, [&](GenerationResult&& r) {
    if (r.request == 1) got = r.tokens;
  });
  EXPECT_EQ(got, direct.tokens);

  EXPECT_EQ(prompt_stream(s.prompt), prompt_stream(std::vector<int32_t>(s.prompt)));
  std::vector<int32_t> prefix(s.prompt.begin(), s.prompt.end() - 1);
  EXPECT_NE(prompt_stream(prefix), prompt_stream(s.prompt));
  std::vector<int32_t> other = s.prompt;
  other.back() ^= 1;
  EXPECT_NE(prompt_stream(other), prompt_stream(s.prompt));
}

TEST(ContinuousBatch, CancelFreesTheSlotBeforeTheNextStep) {
  TinyModel m;
  BatchLimits limits;
  limits.max_batch = 2;
  ContinuousBatch batch(*m.model, limits);
  SequenceSpec long_one = spec_for(2);
  long_one.max_new_tokens = 1000;
  long_one.stop_ids.clear();
  const uint64_t a = batch.add(long_one);
  const uint64_t b = batch.add(long_one);
  EXPECT_FALSE(batch.has_room());
  std::vector<StepEvent> events;
  batch.step(m.pool, events);
  batch.step(m.pool, events);
  batch.cancel(a);
  batch.step(m.pool, events);
  ASSERT_EQ(events.size(), 2u);  // a's cancellation, b's token
  EXPECT_EQ(events[0].id, a);
  EXPECT_EQ(events[0].finish_reason, "cancelled");
  EXPECT_EQ(events[0].tokens.size(), 2u);
  EXPECT_EQ(events[1].id, b);
  EXPECT_EQ(batch.running(), 1u);
  EXPECT_TRUE(batch.has_room());
  batch.cancel(12345);  // unknown ids are ignored
  batch.cancel(b);
  batch.step(m.pool, events);
  EXPECT_TRUE(batch.empty());
}

TEST(ContinuousBatch, LogprobsMatchASlowReference) {
  std::vector<float> logits = {1.5f, -2.0f, 3.25f, 3.25f, 0.0f, -7.0f, 2.0f};
  const TokenLogprobs got = token_logprobs(logits, 4, 3);
  // log_softmax by the definition, in long double.
  long double total = 0;
  for (float v : logits) total += std::exp(static_cast<long double>(v));
  auto reference = [&](int i) {
    return static_cast<double>(static_cast<long double>(logits[i]) - std::log(total));
  };
  EXPECT_NEAR(got.logprob, reference(4), 1e-12);
  ASSERT_EQ(got.top.size(), 3u);
  EXPECT_EQ(got.top[0].first, 2);  // ties: the lower id first
  EXPECT_EQ(got.top[1].first, 3);
  EXPECT_EQ(got.top[2].first, 6);
  for (const auto& [id, lp] : got.top) EXPECT_NEAR(lp, reference(id), 1e-12);
  EXPECT_TRUE(token_logprobs(logits, 0, 0).top.empty());
  EXPECT_EQ(token_logprobs(logits, 0, 50).top.size(), logits.size());
}

// Feeds `pieces` cumulatively, as the engine decodes after each token; returns the released
// deltas (the last one from finish()).
std::vector<std::string> release(AnswerText& a, const std::vector<std::string>& pieces) {
  std::vector<std::string> out;
  std::string text;
  for (const auto& p : pieces) {
    text += p;
    if (a.update(text)) break;
    out.push_back(a.take_released());
  }
  out.push_back(a.finish());
  return out;
}

std::string joined(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += p;
  return s;
}

TEST(AnswerText, HoldsBackPossibleStopStringsAndCutsAtOne) {
  AnswerText a({"###", "END"});
  const auto out = release(a, {"Hello", " #", "#", " no", " E", "N", "D", " after"});
  // "Hello" goes at once; "#" waits until "##" then " no" shows it is not "###".
  EXPECT_EQ(out[0], "Hello");
  EXPECT_EQ(out[1], "");  // " #": the space and "#" held back
  EXPECT_EQ(out[2], "");  // " ##"
  EXPECT_EQ(out[3], " ## no");
  EXPECT_EQ(out[4], "");  // " E"
  EXPECT_EQ(out[5], "");  // " EN"
  EXPECT_EQ(joined(out), "Hello ## no ");
  EXPECT_EQ(a.text(), "Hello ## no ");
  EXPECT_TRUE(a.stopped());
}

TEST(AnswerText, NeverSplitsACharacterOrReleasesAReplacement) {
  AnswerText a;
  const std::string euro = "\xE2\x82\xAC";  // U+20AC in three bytes
  const auto out = release(a, {"a", euro.substr(0, 1), euro.substr(1, 1), euro.substr(2), "b"});
  EXPECT_EQ(out[0], "a");
  EXPECT_EQ(out[1], "");
  EXPECT_EQ(out[2], "");
  EXPECT_EQ(out[3], euro);
  EXPECT_EQ(joined(out), "a" + euro + "b");
  // A decoder that shows a partial character as U+FFFD: held back until replaced.
  AnswerText b;
  const std::string fffd = "\xEF\xBF\xBD";
  b.update("x" + fffd);
  EXPECT_EQ(b.take_released(), "x");
  b.update("x" + euro);
  EXPECT_EQ(b.take_released(), euro);
  // Trailing spaces wait (clean-up rules may remove them once punctuation arrives).
  AnswerText c;
  c.update("word ");
  EXPECT_EQ(c.take_released(), "word");
  c.update("word.");
  EXPECT_EQ(c.take_released(), ".");
  EXPECT_EQ(c.finish(), "");
}

TEST(AnswerText, StreamedTextEqualsTheWholeAnswerOnRandomPieces) {
  const std::vector<std::string> atoms = {"a", " ", "#",        "##",       "\xC3", "\xA9", "END",
                                          "E", "x", "\xF0\x9F", "\x98\x80", "  ",   "."};
  for (uint64_t seed = 0; seed < 300; ++seed) {
    SplitMix64 rng(seed);
    std::vector<std::string> pieces;
    for (int i = 0; i < 12; ++i) pieces.push_back(atoms[rng.below(atoms.size())]);
    AnswerText streamed({"###", "END"});
    const std::string got = joined(release(streamed, pieces));
    AnswerText whole({"###", "END"});
    whole.update(joined(pieces));
    EXPECT_EQ(got, whole.finish()) << "seed " << seed;
  }
}

}  // namespace
}  // namespace expo
