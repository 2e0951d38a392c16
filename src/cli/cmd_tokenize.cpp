// expo tokenize / expo detokenize: text to token ids and back with a model's Hugging Face
// tokenizer (tokenizer.json), as transformers does it.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/input_limits.h"
#include "gguf/gguf_checkpoint.h"
#include "io/gguf.h"
#include "text/tokenizer.h"

namespace expo::cli {

namespace {

struct TokenizeArgs {
  std::string tokenizer, text, text_file;
  bool no_special = false;
};

struct DetokenizeArgs {
  std::string tokenizer, ids;
  bool skip_special = false, no_newline = false;
};

std::string read_input(const TokenizeArgs& args) {
  if (args.text_file.empty()) return args.text;
  // Standard input is read as /dev/stdin, under the same size limit as a file.
  return read_text_file(args.text_file == "-" ? "/dev/stdin" : args.text_file,
                        InputLimits::from_environment().max_file_bytes, kInputMaxFileEnv);
}

// "1,2,3" or a JSON array "[1, 2, 3]" (what expo tokenize prints).
std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::string list = text;
  const size_t first = list.find_first_not_of(" \t\n");
  if (first != std::string::npos && list[first] == '[') {
    const size_t last = list.find_last_not_of(" \t\n");
    if (list[last] != ']')
      usage_fail("--ids: \"", text, "\" starts with [ but does not end with ]");
    list = list.substr(first + 1, last - first - 1);
    if (list.find_first_not_of(" \t\n") == std::string::npos) return ids;
  }
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(pos, end - pos);
    const size_t b = item.find_first_not_of(" \t\n"), e = item.find_last_not_of(" \t\n");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    char* stop = nullptr;
    const long long v = item.empty() ? -1 : std::strtoll(item.c_str(), &stop, 10);
    if (item.empty() || *stop != '\0' || v < 0 || v > INT32_MAX)
      usage_fail("--ids: \"", item, "\" (item ", ids.size() + 1, ") is not a token id");
    ids.push_back(static_cast<int32_t>(v));
    pos = end + 1;
  }
  return ids;
}

// A folder's tokenizer, or a GGUF file's (rebuilt from its metadata).
Tokenizer load_tokenizer(const std::string& spec) {
  if (!is_gguf_file(spec)) return Tokenizer::load(spec);
  const GgufTokenizerFolder folder = gguf_tokenizer_folder(spec);
  return Tokenizer::load(folder.path.string());
}

void run_tokenize(const TokenizeArgs& args) {
  if (args.text_file.empty() == false && !args.text.empty())
    fail("give either --text or --text-file, not both");
  const Tokenizer tokenizer = load_tokenizer(args.tokenizer);
  const std::vector<int32_t> ids = tokenizer.encode(read_input(args), !args.no_special);
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
  out += "]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
}

void run_detokenize(const DetokenizeArgs& args) {
  const std::vector<int32_t> ids = parse_ids(args.ids);
  const Tokenizer tokenizer = load_tokenizer(args.tokenizer);
  std::string text = tokenizer.decode(ids, args.skip_special);
  if (!args.no_newline) text += '\n';
  std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand(
      "tokenize",
      "Encode text into token ids with a model's tokenizer (tokenizer.json, tokenizer_config.json)"
      ", exactly as Hugging Face transformers does, and print them as a JSON array. Special "
      "tokens (such as Llama's BOS) are added as transformers adds them by default.\n"
      "Example: expo tokenize --tokenizer ./Meta-Llama-3-8B --text 'Hello'   # [128000, 9906]");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "model folder with tokenizer.json (and tokenizer_config.json), or a .gguf file")
      ->required();
  auto* text = cmd->add_option("--text", args->text, "the text to encode (UTF-8)");
  auto* file = cmd->add_option("--text-file", args->text_file,
                               "read the text from this file ('-': standard input), byte for byte");
  text->excludes(file);
  file->excludes(text);
  cmd->add_flag("--no-special", args->no_special, "add no special tokens (no BOS/EOS)");
  cmd->callback([args, text, file] {
    if (text->count() == 0 && file->count() == 0) fail("give --text or --text-file");
    run_tokenize(*args);
  });
}

void add_detokenize_command(CLI::App& app) {
  auto args = std::make_shared<DetokenizeArgs>();
  auto* cmd = app.add_subcommand(
      "detokenize",
      "Decode token ids into text with a model's tokenizer, as transformers' decode() does, and "
      "print it followed by a newline.\n"
      "Example: expo detokenize --tokenizer ./Meta-Llama-3-8B --ids 128000,9906");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "model folder with tokenizer.json (and tokenizer_config.json), or a .gguf file")
      ->required();
  cmd->add_option("--ids", args->ids, "token ids: 1,2,3 or a JSON array [1, 2, 3]")->required();
  cmd->add_flag("--skip-special-tokens", args->skip_special,
                "leave out special tokens (BOS, EOS, <|eot_id|>, ...)");
  cmd->add_flag("--no-newline", args->no_newline, "print the text without a final newline");
  cmd->callback([args] { run_detokenize(*args); });
}

}  // namespace expo::cli
