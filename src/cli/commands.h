#pragma once
// One file per subcommand; each adds itself to the app with its options and a callback that
// calls into libexpo. Callbacks throw expo::Error; main() prints it and exits non-zero.
#include <CLI/CLI.hpp>
#include <string>

namespace expo::cli {

// `invocation` is the command line as typed, shell-quoted; the commands that write a model
// record it in the model card.
void add_extrapolate_command(CLI::App& app, const std::string& invocation);
void add_inspect_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_diff_command(CLI::App& app);
void add_demo_command(CLI::App& app, const std::string& invocation);
void add_forward_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_search_command(CLI::App& app, const std::string& invocation);
void add_chat_template_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_detokenize_command(CLI::App& app);

// The command line as typed, shell-quoted: "expo search --sft 'my model' ...".
std::string shell_command_line(int argc, char** argv);

}  // namespace expo::cli
