// expo: the command-line front end. It parses arguments and prints; libexpo does the work.
#include <expo/version.h>
#include <cstdio>
#include <filesystem>
#include <new>

#include "cli/commands.h"
#include "cli/usage.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "gguf/gguf_checkpoint.h"

namespace expo::cli {

namespace {

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789-_./=,:+@%") == std::string::npos)
    return arg;
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}
}  // namespace

std::string shell_command_line(int argc, char** argv) {
  std::string line = "expo";
  for (int i = 1; i < argc; ++i) line += " " + shell_quote(argv[i]);
  return line;
}

}  // namespace expo::cli

int main(int argc, char** argv) {
  const std::string invocation = expo::cli::shell_command_line(argc, argv);
  expo::install_interrupt_handlers();
  expo::register_gguf_checkpoints();  // model.gguf wherever a model is named
  CLI::App app{
      "expo: model extrapolation (ExPO) for aligned language models.\n"
      "theta2 = theta1 + alpha * (theta1 - theta0), from an SFT checkpoint (theta0) and its\n"
      "DPO/RLHF successor (theta1), on Hugging Face safetensors checkpoints.",
      "expo"};
  app.set_version_flag("--version", std::string("expo ") + EXPO_VERSION);
  app.require_subcommand(1);
  expo::cli::add_extrapolate_command(app, invocation);
  expo::cli::add_inspect_command(app);
  expo::cli::add_convert_command(app);
  expo::cli::add_diff_command(app);
  expo::cli::add_forward_command(app);
  expo::cli::add_generate_command(app);
  expo::cli::add_serve_command(app);
  expo::cli::add_score_command(app);
  expo::cli::add_search_command(app, invocation);
  expo::cli::add_chat_template_command(app);
  expo::cli::add_tokenize_command(app);
  expo::cli::add_detokenize_command(app);
  expo::cli::add_demo_command(app, invocation);
  const std::string subcommand = expo::cli::subcommand_of(app, argc, argv);
  try {
    expo::cli::check_names(app, argc, argv);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return expo::cli::report_usage_error(app, e, subcommand);
  } catch (const expo::UsageError& e) {
    return expo::cli::report_usage_error(e.what(), subcommand);
  } catch (const expo::Error& e) {
    std::fprintf(stderr, "expo: error: %s\n", e.what());
    return expo::interrupted() ? 130 : 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // Library code names the path and the step in its own errors; this is the backstop.
    std::fprintf(stderr, "expo: error: %s\n", expo::cli::describe_filesystem_error(e).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    // The library names what it was doing where an input can ask for memory (templates,
    // prompt and answer files, HTTP answers, tokenizers); this is the last resort.
    std::fprintf(stderr,
                 "expo: error: out of memory (std::bad_alloc) in: %s\n"
                 "  the model, --batch-size or --max-context may need more memory than this "
                 "machine has, or an input asks for it; the limits on untrusted inputs "
                 "(EXPO_INPUT_MAX_FILE, EXPO_INPUT_MAX_LINE, EXPO_TEMPLATE_MAX_OUTPUT, "
                 "EXPO_TEMPLATE_MAX_ITEMS, EXPO_HTTP_MAX_BODY) can be lowered to stop it sooner\n",
                 invocation.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "expo: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
