#pragma once
// One file per subcommand; each adds itself to the app with its options and a callback that
// calls into libexpo. Callbacks throw expo::Error; main() prints it and exits non-zero.
#include <CLI/CLI.hpp>
#include <string>

namespace expo::cli {

void add_extrapolate_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_diff_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_forward_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_search_command(CLI::App& app);
void add_chat_template_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_detokenize_command(CLI::App& app);

// The command line as typed, shell-quoted (for model cards).
const std::string& command_line();
void set_command_line(int argc, char** argv);

}  // namespace expo::cli
