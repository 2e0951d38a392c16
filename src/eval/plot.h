#pragma once
// The search's plot: a hand-written SVG of reward and answer length against alpha, and its
// conversion to PNG by rsvg-convert or ImageMagick when one is installed.
//
// The plot has two panels sharing the x axis: mean reward with standard-error bars (top) and
// mean answer length in tokens (bottom); the best alpha is marked in both. The x axis is
// logarithmic when the alphas above 0 span at least a decade (max / min >= 10); alpha 0, which
// a log axis cannot show, then sits in its own slot at the left, separated by an axis break
// (a gap with two slanted strokes). Otherwise the axis is linear from 0.
#include <filesystem>
#include <span>
#include <string>

#include "eval/alpha_stats.h"

namespace expo {

// A standalone SVG document (UTF-8, well-formed XML). `title` is escaped.
std::string render_svg(std::span<const AlphaSummary> summaries, double best_alpha,
                       const std::string& title);

// Converts an SVG file to PNG with rsvg-convert or convert found on PATH. Returns false with
// `note` saying why when there is no converter or it failed; never throws for that.
bool convert_svg_to_png(const std::filesystem::path& svg, const std::filesystem::path& png,
                        std::string& note);

}  // namespace expo
