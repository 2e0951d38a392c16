#pragma once
// The fingerprints (core/fingerprint.h) of the runs that can be resumed: a search's output
// folder (D/fingerprint.json) and expo generate's partial answers. Each holds every setting the
// answers and rewards depend on: which models (location and content identity, or the served
// name and URL), the prompts (their content, after --shuffle and --limit), sampling and token
// limits, stop tokens, the tokenizer and chat template, and the expo version. Never threads,
// batch size (the engine is batch invariant), progress or where outputs go.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/fingerprint.h"
#include "eval/prompt_set.h"
#include "io/checkpoint.h"
#include "merge/expo_pair.h"
#include "model/generator.h"

namespace expo {

// "expo version".
void add_version_setting(Fingerprint& f);
// "--prompts": the number of prompts and a hash of each one's id and record, in order.
void add_prompt_settings(Fingerprint& f, const PromptSet& prompts);
// Sampling, --max-new-tokens, --max-context and the stop tokens in effect (`gen.stop_ids`).
void add_generation_settings(Fingerprint& f, const GenerationOptions& gen);
// `name` ("--tokenizer"): the folder and a hash of its tokenizer and chat template files.
void add_tokenizer_setting(Fingerprint& f, const std::string& name,
                           const std::filesystem::path& folder);
// `name` ("--sft"): checkpoint_identity().
void add_checkpoint_setting(Fingerprint& f, const std::string& name, const Checkpoint& checkpoint);
// The adapter_config.json of each adapter of `pair` (its scale and patterns change the model
// as much as its weights do).
void add_adapter_settings(Fingerprint& f, const ExpoPair& pair);

// A number as its shortest round-trip decimal ("0.7", "42").
std::string setting_number(double value);

}  // namespace expo
