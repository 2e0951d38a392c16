// libFuzzer target for prompt sets and answer files (src/eval/prompt_set, answers): the input
// is read as both, with small input limits so that the line and file caps are exercised.
#include "core/error.h"
#include "core/input_limits.h"
#include "eval/answers.h"
#include "eval/prompt_set.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = expo::fuzz::as_text(data, size);
  expo::InputLimits limits;
  limits.max_line_bytes = 4096;
  try {
    expo::PromptSet set = expo::parse_prompt_set(text, "fuzz.jsonl", limits);
    expo::select_prompts(set, 3, /*shuffle=*/true, 1);
    for (const expo::Prompt& p : set.prompts) {
      std::vector<std::string> answers(p.turn_count(), "answer");
      expo::full_conversation(p, answers);
    }
  } catch (const expo::Error&) {
  }
  try {
    expo::parse_answers(text, "fuzz.jsonl", limits);
  } catch (const expo::Error&) {
  }
  return 0;
}
