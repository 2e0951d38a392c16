// The sampler against hand-computed examples, a slow reference (full sort, no pruning), and
// sampling statistics.
#include "model/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace expo {
namespace {

// Runs `fn` and returns the expo::Error message it throws ("" if none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

SamplingParams sampling(double temperature) {
  SamplingParams p;
  p.temperature = temperature;
  return p;
}

// One token from a fresh sampler (step 0) for `logits` (copied: next() may overwrite them).
int32_t first_token(const SamplingParams& params, uint64_t stream, std::vector<float> logits,
                    const std::vector<int32_t>& prompt = {}) {
  Sampler s(params, stream, prompt);
  return s.next(logits);
}

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

// Which tokens appear over `streams` fresh samplers.
std::map<int32_t, int> histogram(const SamplingParams& params, const std::vector<float>& logits,
                                 int streams) {
  std::map<int32_t, int> h;
  for (int s = 0; s < streams; ++s) ++h[first_token(params, static_cast<uint64_t>(s), logits)];
  return h;
}

// The contract of sampler.h done the slow, obvious way: penalties, then one full sort of the
// whole vocabulary, then each filter in turn.
class ReferenceSampler {
 public:
  ReferenceSampler(const SamplingParams& p, uint64_t stream, std::vector<int32_t> prompt)
      : p_(p), stream_(stream), history_(std::move(prompt)) {}

  int32_t next(std::vector<float> logits) {
    std::map<int32_t, int> generated;
    for (int32_t t : generated_) ++generated[t];
    std::vector<bool> seen(logits.size());
    for (int32_t t : history_) seen[static_cast<size_t>(t)] = true;
    for (size_t i = 0; i < logits.size(); ++i) {
      if (seen[i] && p_.repetition_penalty != 1.0) {
        const double l = logits[i];
        logits[i] =
            static_cast<float>(l < 0 ? l * p_.repetition_penalty : l / p_.repetition_penalty);
      }
    }
    if (p_.presence_penalty != 0.0 || p_.frequency_penalty != 0.0) {
      for (auto [t, c] : generated) {
        const double l = logits[static_cast<size_t>(t)];
        logits[static_cast<size_t>(t)] =
            static_cast<float>(l - (p_.presence_penalty + p_.frequency_penalty * c));
      }
    }
    int32_t token;
    if (p_.temperature == 0.0) {
      token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                   logits.begin());  // the first maximum
    } else {
      const double m = *std::max_element(logits.begin(), logits.end());
      std::vector<std::pair<double, int32_t>> c;
      double total = 0;
      for (size_t i = 0; i < logits.size(); ++i) {
        const double w = std::exp((logits[i] - m) / p_.temperature);
        c.push_back({w, static_cast<int32_t>(i)});
        total += w;
      }
      // Stable sort of the id-ordered list by weight: equal weights stay in id order.
      std::stable_sort(c.begin(), c.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      // Sums over a set of tokens go in id order; running sums in sorted order.
      auto id_order_sum = [&](const std::vector<std::pair<double, int32_t>>& set) {
        std::vector<double> by_id(logits.size(), -1.0);
        for (auto& x : set) by_id[static_cast<size_t>(x.second)] = x.first;
        double sum = 0;
        for (double w : by_id)
          if (w >= 0) sum += w;
        return sum;
      };
      double mass = total;
      if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < c.size()) {
        c.resize(static_cast<size_t>(p_.top_k));
        mass = id_order_sum(c);
      }
      if (p_.top_p < 1.0) {
        double cum = 0;
        size_t j = 0;
        while (j < c.size() && cum < p_.top_p * mass) cum += c[j++].first;
        c.resize(j);
      }
      const double threshold = p_.min_p * c[0].first;
      std::erase_if(c, [&](const auto& x) { return x.first < threshold; });
      const double target = uniform_at(p_.seed, stream_, generated_.size()) * id_order_sum(c);
      double cum = 0;
      token = -1;
      for (auto& x : c) {
        cum += x.first;
        if (target < cum) {
          token = x.second;
          break;
        }
      }
      if (token < 0) {  // rounding: the last kept token of positive weight
        while (c.size() > 1 && c.back().first == 0.0) c.pop_back();
        token = c.back().second;
      }
    }
    generated_.push_back(token);
    history_.push_back(token);
    return token;
  }

 private:
  SamplingParams p_;
  uint64_t stream_;
  std::vector<int32_t> history_;
  std::vector<int32_t> generated_;
};

TEST(SamplerUniform, DeterministicInRangeAndSpread) {
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = uniform_at(42, 7, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 4 * std::sqrt(1.0 / 12 / n));
  EXPECT_EQ(uniform_at(1, 2, 3), uniform_at(1, 2, 3));
  EXPECT_NE(uniform_at(1, 2, 3), uniform_at(1, 2, 4));
  EXPECT_NE(uniform_at(1, 2, 3), uniform_at(1, 3, 3));
  EXPECT_NE(uniform_at(1, 2, 3), uniform_at(2, 2, 3));
  // The three words are not interchangeable.
  EXPECT_NE(uniform_at(1, 2, 3), uniform_at(3, 2, 1));
  EXPECT_NE(uniform_at(0, 0, 1), uniform_at(0, 1, 0));
}

TEST(SamplerGreedy, PicksArgmaxAndLowestIdOnTies) {
  EXPECT_EQ(first_token(sampling(0), 0, {0.5f, 3.0f, -1.0f, 2.9f}), 1);
  EXPECT_EQ(first_token(sampling(0), 0, {1.0f, 3.0f, 3.0f, 2.0f, 3.0f}), 1);
  EXPECT_EQ(first_token(sampling(0), 0, {7.0f, 7.0f}), 0);
  EXPECT_EQ(first_token(sampling(0), 0, {-5.0f}), 0);
  // Greedy does not depend on the seed or the stream, and counts as a step.
  SamplingParams p = sampling(0);
  p.seed = 99;
  Sampler s(p, 123, {});
  std::vector<float> logits = {0.0f, 1.0f, 0.0f};
  EXPECT_EQ(s.next(logits), 1);
  EXPECT_EQ(s.generated(), 1u);
}

TEST(SamplerPenalties, RepetitionOverPromptAndGenerated) {
  SamplingParams p = sampling(0);
  p.repetition_penalty = 2.0;
  Sampler s(p, 0, std::vector<int32_t>{0, 1, 0});
  // Seen tokens 0 and 1: positive divided, negative multiplied; once per distinct token.
  std::vector<float> logits = {2.0f, -2.0f, 3.0f, -1.0f};
  s.apply_penalties(logits);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -4.0f, 3.0f, -1.0f}));
  // Greedy sees the penalised scores: 2 -> 1 loses to 1.5.
  std::vector<float> a = {2.0f, -2.0f, 1.5f, -1.0f};
  EXPECT_EQ(s.next(a), 2);
  // Now the generated token 2 is penalised too.
  std::vector<float> b = {2.0f, -2.0f, 3.0f, -1.0f};
  s.apply_penalties(b);
  EXPECT_EQ(b, (std::vector<float>{1.0f, -4.0f, 1.5f, -1.0f}));
  // A negative logit grows more negative: -2 -> -4 loses to -3.5.
  Sampler t(p, 0, std::vector<int32_t>{0});
  std::vector<float> c = {-2.0f, -3.5f, -5.0f};
  EXPECT_EQ(t.next(c), 1);
}

TEST(SamplerPenalties, PresenceAndFrequencyOverGeneratedOnly) {
  SamplingParams p = sampling(0);
  p.presence_penalty = 0.5;
  p.frequency_penalty = 0.25;
  Sampler s(p, 0, std::vector<int32_t>{0, 0, 1});
  std::vector<float> pick2 = {0.0f, 0.0f, 10.0f, 0.0f};
  EXPECT_EQ(s.next(pick2), 2);
  std::vector<float> pick3 = {0.0f, 0.0f, 0.0f, 10.0f};
  EXPECT_EQ(s.next(pick3), 3);
  pick2 = {0.0f, 0.0f, 10.0f, 0.0f};
  EXPECT_EQ(s.next(pick2), 2);  // 10 - (0.5 + 0.25) still wins
  // Generated: 2 twice, 3 once. Prompt tokens 0 and 1 are not penalised.
  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  s.apply_penalties(logits);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 1.0f, 1.0f - 0.5f - 0.5f, 1.0f - 0.5f - 0.25f}));
  // Negative penalties encourage.
  p.presence_penalty = -1.0;
  p.frequency_penalty = 0.0;
  Sampler e(p, 0, {});
  std::vector<float> x = {0.0f, 5.0f};
  EXPECT_EQ(e.next(x), 1);
  std::vector<float> y = {1.0f, 1.0f};
  e.apply_penalties(y);
  EXPECT_EQ(y, (std::vector<float>{1.0f, 2.0f}));
}

TEST(SamplerPenalties, RepetitionComesBeforePresence) {
  SamplingParams p = sampling(0);
  p.repetition_penalty = 2.0;
  p.presence_penalty = 0.5;
  Sampler s(p, 0, {});
  std::vector<float> pick = {0.0f, 10.0f};
  EXPECT_EQ(s.next(pick), 1);
  std::vector<float> logits = {0.0f, 2.0f};
  s.apply_penalties(logits);
  EXPECT_EQ(logits[1], 2.0f / 2 - 0.5f);  // not (2 - 0.5) / 2
}

TEST(SamplerTopK, TopK1EqualsGreedy) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  SamplingParams p = sampling(1.5);
  p.top_k = 1;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> logits(50);
    for (auto& l : logits) l = std::round(normal(rng));  // rounded: many ties
    const int32_t greedy = first_token(sampling(0), 0, logits);
    EXPECT_EQ(first_token(p, static_cast<uint64_t>(trial), logits), greedy);
  }
}

TEST(SamplerTopK, KeepsExactlyKWithTiesByLowerId) {
  // Tokens 1, 2, 4 tie for second place; top_k = 3 keeps 0, 1 and 2.
  SamplingParams p = sampling(1.0);
  p.top_k = 3;
  const auto h = histogram(p, {3.0f, 2.0f, 2.0f, 0.0f, 2.0f, 1.0f}, 2000);
  EXPECT_EQ(h.size(), 3u);
  EXPECT_TRUE(h.count(0) && h.count(1) && h.count(2));
}

TEST(SamplerTopP, KeepsTheSmallestPrefixReachingTopP) {
  const auto logits = log_probs({0.125, 0.5, 0.125, 0.25});  // sorted: 1, 3, then 0, 2
  SamplingParams p = sampling(1.0);
  p.top_p = 0.7;  // 0.5 < 0.7 <= 0.75: tokens 1 and 3
  auto h = histogram(p, logits, 3000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(1) && h.count(3));
  p.top_p = 0.4;  // the first token alone reaches it
  h = histogram(p, logits, 500);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_TRUE(h.count(1));
  p.top_p = 0.8;  // 0.75 < 0.8: the tie between 0 and 2 goes to the lower id, 0
  h = histogram(p, logits, 3000);
  EXPECT_EQ(h.size(), 3u);
  EXPECT_TRUE(h.count(0) && h.count(1) && h.count(3));
  EXPECT_FALSE(h.count(2));
}

TEST(SamplerTopP, IsMeasuredAfterTopKRenormalises) {
  // Probabilities 0.4, 0.3, 0.2, 0.1; top_k = 2 leaves 4/7 and 3/7. top_p = 0.5 is reached by
  // the first token alone (4/7 >= 0.5), although 0.4 < 0.5 before renormalising.
  SamplingParams p = sampling(1.0);
  p.top_k = 2;
  p.top_p = 0.5;
  const auto h = histogram(p, log_probs({0.4, 0.3, 0.2, 0.1}), 1000);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_TRUE(h.count(0));
}

TEST(SamplerMinP, DropsTokensBelowMinPTimesTheLargest) {
  const auto logits = log_probs({0.125, 0.5, 0.125, 0.25});
  SamplingParams p = sampling(1.0);
  p.min_p = 0.3;  // threshold 0.15: keeps 0.5 and 0.25
  auto h = histogram(p, logits, 3000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(1) && h.count(3));
  p.min_p = 0.2;  // threshold 0.1: keeps all
  h = histogram(p, logits, 3000);
  EXPECT_EQ(h.size(), 4u);
  p.min_p = 1.0;  // only the largest
  h = histogram(p, logits, 500);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_TRUE(h.count(1));
}

// |count - N p| <= 4 sigma for every token.
void expect_frequencies(const SamplingParams& params, const std::vector<float>& logits,
                        const std::vector<double>& expected, int streams) {
  const auto h = histogram(params, logits, streams);
  for (size_t t = 0; t < expected.size(); ++t) {
    const double n = streams, q = expected[t];
    const int count = h.count(static_cast<int32_t>(t)) ? h.at(static_cast<int32_t>(t)) : 0;
    EXPECT_LE(std::abs(count - n * q), 4 * std::sqrt(n * q * (1 - q)))
        << "token " << t << ": " << count << " of " << streams << ", expected p " << q;
  }
}

TEST(SamplerDistribution, FrequenciesMatchProbabilities) {
  const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
  expect_frequencies(sampling(1.0), log_probs(probs), probs, 20000);
  // Temperature 0.5 squares the probabilities (then renormalises): 1, 4, 9, 16 over 30.
  expect_frequencies(sampling(0.5), log_probs(probs), {1 / 30.0, 4 / 30.0, 9 / 30.0, 16 / 30.0},
                     20000);
  // top_k = 3 drops 0.1 and renormalises the rest over 0.9.
  SamplingParams p = sampling(1.0);
  p.top_k = 3;
  expect_frequencies(p, log_probs(probs), {0.0, 0.2 / 0.9, 0.3 / 0.9, 0.4 / 0.9}, 20000);
  // Along one sequence too: steps, not only streams, are independent draws.
  SamplingParams seq = sampling(1.0);
  seq.seed = 11;
  Sampler s(seq, 0, {});
  std::vector<int> counts(4);
  const int steps = 20000;
  for (int i = 0; i < steps; ++i) {
    auto logits = log_probs(probs);
    ++counts[static_cast<size_t>(s.next(logits))];
  }
  for (size_t t = 0; t < 4; ++t)
    EXPECT_LE(std::abs(counts[t] - steps * probs[t]),
              4 * std::sqrt(steps * probs[t] * (1 - probs[t])));
}

std::vector<int32_t> run(Sampler& s, const std::vector<float>& logits, int steps) {
  std::vector<int32_t> out;
  for (int i = 0; i < steps; ++i) {
    auto copy = logits;
    out.push_back(s.next(copy));
  }
  return out;
}

std::vector<float> random_logits(size_t vocab, uint32_t seed, float scale = 2.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> l(vocab);
  for (auto& x : l) x = normal(rng);
  return l;
}

TEST(SamplerDeterminism, SameKeySameSequenceOtherStreamOtherSequence) {
  const auto logits = random_logits(1000, 1);
  SamplingParams p = sampling(1.0);
  p.seed = 7;
  p.frequency_penalty = 0.1;
  Sampler a(p, 3, {}), b(p, 3, {}), c(p, 4, {});
  const auto sa = run(a, logits, 50), sb = run(b, logits, 50), sc = run(c, logits, 50);
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  p.seed = 8;
  Sampler d(p, 3, {});
  EXPECT_NE(run(d, logits, 50), sa);
}

TEST(SamplerDeterminism, OtherSamplersInBetweenChangeNothing) {
  const auto logits = random_logits(500, 2);
  SamplingParams p = sampling(0.8);
  p.top_p = 0.95;
  p.repetition_penalty = 1.3;
  Sampler alone(p, 5, std::vector<int32_t>{1, 2, 3});
  const auto expected = run(alone, logits, 40);

  Sampler mine(p, 5, std::vector<int32_t>{1, 2, 3});
  Sampler other(p, 6, {});
  SamplingParams q = p;
  q.seed = 1234;
  q.top_k = 10;
  Sampler third(q, 5, {});
  std::vector<int32_t> got;
  const auto big = random_logits(40000, 3);  // others grow their scratch beyond ours
  for (int i = 0; i < 40; ++i) {
    for (int j = 0; j < i % 3; ++j) run(other, big, 1);
    run(third, logits, 1);
    auto copy = logits;
    got.push_back(mine.next(copy));
  }
  EXPECT_EQ(got, expected);
}

TEST(SamplerReference, FastPathsEqualTheFullSort) {
  // Random logits and settings, several steps each, token for token against the reference.
  // Peaked, flat and quantised (tied) logits exercise the pruning before the sort, its
  // fallback, and the tie order.
  std::mt19937 rng(77);
  int compared = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const size_t vocab = std::uniform_int_distribution<size_t>(1, 3000)(rng);
    const float scale = std::array<float, 4>{0.01f, 1.0f, 4.0f, 20.0f}[trial % 4];
    auto logits = random_logits(vocab, static_cast<uint32_t>(trial), scale);
    if (trial % 5 == 0)
      for (auto& l : logits) l = std::round(l);
    SamplingParams p;
    p.seed = rng();
    p.temperature = std::array<double, 5>{0.0, 0.3, 1.0, 1.7, 1e-6}[trial % 5];
    p.top_k = std::array<int, 5>{0, 0, 1, 40, 5000}[(trial / 5) % 5];
    p.top_p = std::array<double, 6>{1.0, 0.9, 0.5, 1e-9, 1.0 - 1e-16, 0.999}[(trial / 3) % 6];
    p.min_p = std::array<double, 4>{0.0, 0.05, 0.0, 0.5}[(trial / 7) % 4];
    p.repetition_penalty = trial % 2 ? 1.0 : 1.2;
    p.presence_penalty = trial % 3 ? 0.0 : 0.4;
    p.frequency_penalty = trial % 4 ? 0.0 : 0.3;
    std::vector<int32_t> prompt;
    for (int i = 0; i < 5; ++i)
      prompt.push_back(std::uniform_int_distribution<int32_t>(0, int32_t(vocab) - 1)(rng));
    const uint64_t stream = rng() % 100;
    Sampler fast(p, stream, prompt);
    ReferenceSampler slow(p, stream, prompt);
    for (int step = 0; step < 8; ++step) {
      auto copy = logits;
      const int32_t want = slow.next(logits);
      ASSERT_EQ(fast.next(copy), want) << "trial " << trial << " step " << step;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 300 * 8);
}

TEST(SamplerReference, LargeVocabulary) {
  const size_t vocab = 151936;
  const auto logits = random_logits(vocab, 9, 3.0f);
  for (double top_p : {1.0, 0.9, 0.999999}) {
    for (int top_k : {0, 50}) {
      SamplingParams p = sampling(0.7);
      p.top_p = top_p;
      p.top_k = top_k;
      p.min_p = top_k ? 0.01 : 0.0;
      p.seed = 3;
      Sampler fast(p, 1, {});
      ReferenceSampler slow(p, 1, {});
      for (int step = 0; step < 4; ++step) {
        auto copy = logits;
        EXPECT_EQ(fast.next(copy), slow.next(logits));
      }
    }
  }
}

TEST(SamplerReference, DrawsAtTheEndsOfTheUnitInterval) {
  // Seeds whose first draw is within 1e-6 of 0 or of 1: the walk ends at the first token, or
  // deep in the sorted tail of a flat distribution.
  uint64_t low = 0, high = 0;
  for (uint64_t seed = 1; low == 0 || high == 0; ++seed) {
    const double u = uniform_at(seed, 0, 0);
    if (u < 1e-6 && low == 0) low = seed;
    if (u > 1 - 1e-6 && high == 0) high = seed;
  }
  const auto logits = random_logits(50000, 4, 0.5f);
  for (uint64_t seed : {low, high}) {
    for (double top_p : {1.0, 0.99}) {
      SamplingParams p = sampling(1.0);
      p.seed = seed;
      p.top_p = top_p;
      Sampler fast(p, 0, {});
      ReferenceSampler slow(p, 0, {});
      auto copy = logits;
      EXPECT_EQ(fast.next(copy), slow.next(logits)) << "seed " << seed << " top_p " << top_p;
    }
  }
}

TEST(SamplerErrors, NonFiniteLogitNamesTheToken) {
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    for (double t : {0.0, 1.0}) {
      Sampler s(sampling(t), 0, {});
      std::vector<float> logits = {0.0f, 1.0f, 2.0f, bad, 0.5f};
      const std::string msg = error_of([&] { s.next(logits); });
      EXPECT_NE(msg.find("token 3"), std::string::npos) << msg;
      EXPECT_NE(msg.find("step 0"), std::string::npos) << msg;
    }
  }
  Sampler s(sampling(1.0), 0, {});
  std::vector<float> empty;
  EXPECT_THROW(s.next(empty), Error);
}

TEST(SamplerErrors, TokenOutsideTheVocabulary) {
  SamplingParams p = sampling(0);
  p.repetition_penalty = 1.1;
  Sampler s(p, 0, std::vector<int32_t>{2, 10});
  std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  const std::string msg = error_of([&] { s.next(logits); });
  EXPECT_NE(msg.find("token id 10"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { Sampler(p, 0, std::vector<int32_t>{-1}); }), "");
}

TEST(SamplerErrors, PenaltyOverflow) {
  SamplingParams p = sampling(1.0);
  p.repetition_penalty = 1e-38;
  Sampler s(p, 0, std::vector<int32_t>{0});
  std::vector<float> logits = {1000.0f, 1.0f};
  const std::string msg = error_of([&] { s.next(logits); });
  EXPECT_NE(msg.find("--repetition-penalty"), std::string::npos) << msg;
}

TEST(SamplerValidate, AcceptsDefaultsAndLimits) {
  EXPECT_NO_THROW(validate(SamplingParams{}));
  SamplingParams p;
  p.temperature = 2.0;
  p.top_k = 1;
  p.top_p = 1.0;
  p.min_p = 1.0;
  p.repetition_penalty = 0.5;
  p.presence_penalty = -2.0;
  p.frequency_penalty = 2.0;
  EXPECT_NO_THROW(validate(p));
  p.min_p = 0.0;
  p.top_p = 1e-9;
  EXPECT_NO_THROW(validate(p));
}

TEST(SamplerValidate, RejectsBadValuesNamingTheOption) {
  struct Case {
    void (*set)(SamplingParams&);
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](SamplingParams& p) { p.temperature = -0.1; }, "--temperature must be"},
      {[](SamplingParams& p) { p.temperature = std::numeric_limits<double>::quiet_NaN(); },
       "--temperature must be"},
      {[](SamplingParams& p) { p.temperature = INFINITY; }, "--temperature must be"},
      {[](SamplingParams& p) { p.top_k = -1; }, "--top-k must be >= 0 (0: off), got -1"},
      {[](SamplingParams& p) { p.top_p = 1.5; }, "--top-p must be in (0, 1] (1: off), got 1.5"},
      {[](SamplingParams& p) { p.top_p = 0.0; }, "--top-p must be in (0, 1]"},
      {[](SamplingParams& p) { p.top_p = std::numeric_limits<double>::quiet_NaN(); },
       "--top-p must be in (0, 1]"},
      {[](SamplingParams& p) { p.min_p = -0.1; }, "--min-p must be in [0, 1]"},
      {[](SamplingParams& p) { p.min_p = 1.1; }, "--min-p must be in [0, 1] (0: off), got 1.1"},
      {[](SamplingParams& p) { p.presence_penalty = std::numeric_limits<double>::quiet_NaN(); },
       "--presence-penalty"},
      {[](SamplingParams& p) { p.frequency_penalty = -INFINITY; }, "--frequency-penalty"},
      {[](SamplingParams& p) { p.repetition_penalty = 0.0; }, "--repetition-penalty must be"},
      {[](SamplingParams& p) { p.repetition_penalty = -1.0; }, "--repetition-penalty must be"},
      {[](SamplingParams& p) { p.repetition_penalty = INFINITY; }, "--repetition-penalty"},
  };
  for (const auto& c : cases) {
    SamplingParams p;
    c.set(p);
    const std::string msg = error_of([&] { validate(p); });
    EXPECT_NE(msg.find(c.message), std::string::npos) << "got: " << msg;
    // The constructor validates too.
    EXPECT_THROW(Sampler(p, 0, {}), Error);
  }
}

}  // namespace
}  // namespace expo
