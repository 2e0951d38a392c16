#pragma once
// The search's report: a Markdown table, the plot (eval/plot.h) as SVG and, when a converter is
// installed, PNG, and D/report.md tying them together.
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "eval/alpha_stats.h"
#include "eval/search.h"

namespace expo {

// printf of one number ("%.4f"), or "n/a" when it is NaN or infinite.
std::string number_or_na(const char* format, double value);

// Rows sorted by alpha: alpha (the best in bold, marked "best"), mean reward ± s.e., paired
// win rate against alpha 0, mean answer length in tokens and characters, failed, truncated.
std::string format_table(std::span<const AlphaSummary> summaries, double best_alpha);

struct ReportOptions {
  std::string title = "expo search: reward against alpha";
  std::vector<std::string> details;  // extra bullet lines for report.md (models, prompt set...)
  bool png = true;                   // try rsvg-convert, then ImageMagick's convert
};

struct ReportFiles {
  std::filesystem::path markdown;            // D/report.md
  std::filesystem::path svg;                 // D/reward_vs_alpha.svg
  std::optional<std::filesystem::path> png;  // D/reward_vs_alpha.png when made
  std::string png_note;                      // why there is no PNG (also written in report.md)
};

// Writes report.md, reward_vs_alpha.svg and, when possible, reward_vs_alpha.png into `dir`
// (each atomically). The PNG is skipped, with a note, when no converter is found on PATH or
// the converter fails.
ReportFiles write_report(const std::filesystem::path& dir, const SearchOutcome& outcome,
                         const ReportOptions& options);

}  // namespace expo
