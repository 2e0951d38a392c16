#pragma once
// The search's plot: a hand-written SVG of reward and answer length against alpha, and its
// conversion to PNG by rsvg-convert or ImageMagick when one is installed.
//
// The plot has panels sharing the x axis: mean reward with standard-error bars (top), any extra
// series the caller gives (the demo's gold score), and mean answer length in tokens (bottom);
// the best alpha is marked in all. The x axis is
// logarithmic when the alphas above 0 span at least a decade (max / min >= 10); alpha 0, which
// a log axis cannot show, then sits in its own slot at the left, separated by an axis break
// (a gap with two slanted strokes). Otherwise the axis is linear from 0.
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "eval/alpha_stats.h"

namespace expo {

struct PlotPoint {
  double alpha = 0, value = 0;
  double se = AlphaSummary::kNaN;  // error bar half-height; NaN: none
};
// A horizontal dotted line across a panel, labelled at its right end (e.g. another model's
// score for comparison); drawn only when it lies within the panel's range.
struct PlotReference {
  std::string label;
  double value = 0;
};
struct PlotSeries {
  std::string label;  // the panel's y axis
  std::string color;  // an SVG color, e.g. "#9467bd"
  std::vector<PlotPoint> points;
  std::vector<PlotReference> references;
};

// A standalone SVG document (UTF-8, well-formed XML). `title` and labels are escaped.
// `extra_panels` go between the reward and the length panels.
std::string render_svg(std::span<const AlphaSummary> summaries, double best_alpha,
                       const std::string& title, std::span<const PlotSeries> extra_panels = {});
// The same layout for panels the caller makes, top to bottom (the first one is drawn taller
// and carries the "best alpha" label); at least one.
std::string render_plot(std::span<const PlotSeries> panels, double best_alpha,
                        const std::string& title);

// Converts an SVG file to PNG with rsvg-convert or convert found on PATH. Returns false with
// `note` saying why when there is no converter or it failed; never throws for that.
bool convert_svg_to_png(const std::filesystem::path& svg, const std::filesystem::path& png,
                        std::string& note);

}  // namespace expo
