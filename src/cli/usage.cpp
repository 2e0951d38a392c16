#include "cli/usage.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace expo::cli {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  // Levenshtein distance with adjacent transpositions counted as one edit ("alhpa" -> "alpha").
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

bool looks_like_number(const std::string& token) {
  return token.size() > 1 && token[0] == '-' &&
         (std::isdigit(static_cast<unsigned char>(token[1])) || token[1] == '.');
}

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  return names;
}

// The option `name` ("--alpha" or "-h") of `app`, or nullptr.
const CLI::Option* find_option(const CLI::App& app, const std::string& name) {
  for (const CLI::Option* opt : app.get_options()) {
    if (name.rfind("--", 0) == 0) {
      for (const auto& l : opt->get_lnames())
        if ("--" + l == name) return opt;
    } else {
      for (const auto& s : opt->get_snames())
        if ("-" + s == name) return opt;
    }
  }
  return nullptr;
}

std::vector<std::string> long_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : app.get_options())
    for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
  return names;
}

std::string help_hint(const std::string& subcommand) {
  return subcommand.empty() ? "run 'expo --help' for the commands"
                            : "run 'expo " + subcommand + " --help' for its options";
}

}  // namespace

std::string nearest_name(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  const size_t core = word.size() - std::min<size_t>(word.rfind("--", 0) == 0 ? 2 : 0, word.size());
  const size_t allowed = std::min<size_t>(3, std::max<size_t>(1, core / 3));
  return best_distance <= allowed ? best : "";
}

std::string subcommand_of(const CLI::App& app, int argc, char** argv) {
  const auto names = subcommand_names(app);
  for (int i = 1; i < argc; ++i) {
    const std::string token = argv[i];
    if (token.empty() || token[0] == '-') continue;
    return std::find(names.begin(), names.end(), token) != names.end() ? token : "";
  }
  return "";
}

void check_names(const CLI::App& app, int argc, char** argv) {
  const CLI::App* sub = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string token = argv[i];
    if (token == "--") return;  // everything after it is a value
    if (!sub && !token.empty() && token[0] != '-') {
      const auto names = subcommand_names(app);
      if (std::find(names.begin(), names.end(), token) == names.end()) {
        const std::string near = nearest_name(token, names);
        usage_fail("unknown command '", token, "'",
                   near.empty() ? "" : "; did you mean '" + near + "'?");
      }
      sub = app.get_subcommand(token);
      continue;
    }
    if (token.size() < 2 || token[0] != '-' || looks_like_number(token)) continue;
    const std::string name = token.substr(0, token.find('='));
    const CLI::App& scope = sub ? *sub : app;
    const CLI::Option* opt = find_option(scope, name);
    if (!opt && sub) opt = find_option(app, name);  // --help and --version work everywhere
    if (!opt) {
      const std::string near = nearest_name(name, long_names(scope));
      usage_fail(sub ? "expo " + sub->get_name() + ": " : "", "unknown option ", name,
                 near.empty() ? "" : "; did you mean " + near + "?");
    }
    // An option that takes a value swallows the next token (it may start with '-').
    if (token.find('=') == std::string::npos && opt->get_expected_min() > 0 && i + 1 < argc) ++i;
  }
}

std::string describe_filesystem_error(const std::filesystem::filesystem_error& e) {
  std::string what = e.what();
  const std::string prefix = "filesystem error: ";
  if (what.rfind(prefix, 0) == 0) what = what.substr(prefix.size());
  // Drop the " [path1] [path2]" tail; the paths lead the message instead.
  for (const auto* p : {&e.path2(), &e.path1()}) {
    const std::string tail = " [" + p->string() + "]";
    if (!p->empty() && what.size() >= tail.size() &&
        what.compare(what.size() - tail.size(), tail.size(), tail) == 0)
      what.resize(what.size() - tail.size());
  }
  std::string paths = e.path1().string();
  if (!e.path2().empty()) paths += " -> " + e.path2().string();
  return paths.empty() ? what : paths + ": " + what;
}

int report_usage_error(const std::string& message, const std::string& subcommand) {
  std::fprintf(stderr, "expo: error: %s\n(%s)\n", message.c_str(), help_hint(subcommand).c_str());
  return kUsageExitCode;
}

int report_usage_error(CLI::App& app, const CLI::ParseError& e, const std::string& subcommand) {
  if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
  std::string message = e.what();
  if (message == "A subcommand is required") message = "a command is required";
  return report_usage_error(message, subcommand);
}

}  // namespace expo::cli
