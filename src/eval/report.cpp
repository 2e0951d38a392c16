#include "eval/report.h"

#include <cmath>

#include "core/atomic_write.h"
#include "core/error.h"
#include "core/units.h"
#include "eval/plot.h"
#include "merge/alpha_rules.h"

namespace expo {

namespace fs = std::filesystem;

std::string number_or_na(const char* format, double value) {
  return std::isfinite(value) ? format_printf(format, value) : "n/a";
}

std::string format_table(std::span<const AlphaSummary> summaries, double best_alpha) {
  std::string out =
      "| alpha | mean reward ± s.e. | win rate vs alpha 0 | mean length (tokens) | mean length "
      "(chars) | failed | truncated |\n"
      "|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const AlphaSummary& s : sorted_by_alpha(summaries)) {
    const bool best = s.alpha == best_alpha;
    std::string alpha = format_alpha(s.alpha);
    if (best) alpha = str("**", alpha, "** (best)");
    const std::string reward =
        number_or_na("%.4f", s.mean_reward) + " ± " + number_or_na("%.4f", s.reward_se);
    const std::string win =
        s.alpha == 0 ? std::string("(baseline)") : number_or_na("%.1f%%", 100 * s.win_rate);
    out += str("| ", alpha, " | ", reward, " | ", win, " | ",
               number_or_na("%.1f", s.mean_answer_tokens), " | ",
               number_or_na("%.1f", s.mean_answer_chars), " | ", s.failed, "/", s.prompts, " | ",
               s.truncated, "/", s.prompts, " |\n");
  }
  return out;
}

// ---- the plot ----

ReportFiles write_report(const fs::path& dir, const SearchOutcome& outcome,
                         const ReportOptions& options) {
  if (outcome.results.empty()) fail("report: the search has no results");
  ReportFiles files;
  files.markdown = dir / "report.md";
  files.svg = dir / "reward_vs_alpha.svg";
  const AlphaSummary& best = outcome.summaries[outcome.best];
  write_file_atomically(files.svg,
                        render_svg(outcome.summaries, outcome.best_alpha, options.title));
  if (options.png) {
    const fs::path png = dir / "reward_vs_alpha.png";
    if (convert_svg_to_png(files.svg, png, files.png_note)) files.png = png;
  } else {
    files.png_note = "no PNG: not requested";
  }

  std::string md = str("# ", options.title, "\n\n");
  md += str("**Best alpha: ", format_alpha(outcome.best_alpha), "**: mean reward ",
            number_or_na("%.4f", best.mean_reward), " ± ", number_or_na("%.4f", best.reward_se));
  if (outcome.best_alpha != 0)
    md += str(", paired win rate against alpha 0: ", number_or_na("%.1f%%", 100 * best.win_rate));
  md += str(", over ", best.scored, " scored prompts.\n\n");
  md +=
      "How it was chosen: the alpha with the highest mean reward (rewards are paired: the same "
      "prompts at every alpha). ";
  if (outcome.method == "auto")
    md +=
        "Automatic search: alpha 0 (the aligned model, the baseline), a log-spaced scan, then "
        "golden-section refinement on log(alpha) around the best scanned alpha. ";
  else
    md += "Grid search over the given alphas. ";
  md += str("Stopped because ", outcome.stop_reason, ". ", outcome.results.size(),
            " alphas used: ", outcome.evaluated, " evaluated in this run, ", outcome.resumed,
            " taken from results.jsonl.\n\n");
  for (const std::string& line : options.details) md += str("- ", line, "\n");
  if (!options.details.empty()) md += "\n";
  md += format_table(outcome.summaries, outcome.best_alpha);
  md +=
      "\ns.e.: standard error of the mean. Win rate: the fraction of prompts whose reward beats "
      "alpha 0's, ties counting half. Lengths: mean over scored prompts, all turns together.\n\n";
  md += str("![reward and answer length against alpha](", files.svg.filename().string(), ")\n\n");
  if (files.png)
    md +=
        str("PNG: [", files.png->filename().string(), "](", files.png->filename().string(), ")\n");
  else
    md += str("(", files.png_note, ")\n");
  write_file_atomically(files.markdown, md);
  return files;
}

}  // namespace expo
