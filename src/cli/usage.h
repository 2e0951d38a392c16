#pragma once
// Usage errors as expo reports them: "expo: error: ..." on stderr, the nearest valid command or
// option suggested ("--alhpa" -> "--alpha"), and exit status 2 (1 stays for every other error).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace expo::cli {

constexpr int kUsageExitCode = 2;

// The candidate closest to `word` by edit distance, when it is close enough to be a likely typo
// (at most a third of the word's length, and at most 3 edits); "" otherwise.
std::string nearest_name(const std::string& word, const std::vector<std::string>& candidates);

// Checks the command and option names on the command line against `app` before CLI11 parses
// it, so that a misspelt name is reported as such, with a suggestion, rather than as a missing
// required option. Throws UsageError. Values are not checked here.
void check_names(const CLI::App& app, int argc, char** argv);

// The subcommand named on the command line ("" when none), for "expo SUB --help" hints.
std::string subcommand_of(const CLI::App& app, int argc, char** argv);

// Prints a CLI11 parse error or a UsageError as "expo: error: ..." with a hint to --help, and
// returns the exit status (0 for --help and --version, 2 otherwise).
int report_usage_error(CLI::App& app, const CLI::ParseError& e, const std::string& subcommand);
int report_usage_error(const std::string& message, const std::string& subcommand);

// A std::filesystem error as "PATH: what was being done: why" (the library's text is
// "filesystem error: cannot make canonical path: Too many levels of symbolic links [PATH]").
std::string describe_filesystem_error(const std::filesystem::filesystem_error& e);

}  // namespace expo::cli
