#pragma once
// The search's report: a Markdown table, a hand-written SVG plot of reward and answer length
// against alpha, a PNG of it when a converter is installed, and D/report.md tying them together.
//
// The plot has two panels sharing the x axis: mean reward with standard-error bars (top) and
// mean answer length in tokens (bottom); the best alpha is marked in both. The x axis is
// logarithmic when the alphas above 0 span at least a decade (max / min >= 10); alpha 0, which
// a log axis cannot show, then sits in its own slot at the left, separated by an axis break
// (a gap with two slanted strokes). Otherwise the axis is linear from 0.
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "eval/alpha_stats.h"
#include "eval/search.h"

namespace expo {

// Rows sorted by alpha: alpha (the best in bold, marked "best"), mean reward ± s.e., paired
// win rate against alpha 0, mean answer length in tokens and characters, failed, truncated.
std::string format_table(std::span<const AlphaSummary> summaries, double best_alpha);

// A standalone SVG document (UTF-8, well-formed XML). `title` is escaped.
std::string render_svg(std::span<const AlphaSummary> summaries, double best_alpha,
                       const std::string& title);

// The shortest text that reads back as the same double ("0.3", "25", "0.618").
std::string format_alpha(double alpha);

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

// Converts an SVG file to PNG with rsvg-convert or convert found on PATH. Returns false with
// `note` saying why when there is no converter or it failed; never throws for that.
bool convert_svg_to_png(const std::filesystem::path& svg, const std::filesystem::path& png,
                        std::string& note);

}  // namespace expo
