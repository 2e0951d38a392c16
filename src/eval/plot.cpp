#include "eval/plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/error.h"
#include "core/process.h"
#include "core/units.h"
#include "merge/alpha_rules.h"

namespace expo {

namespace fs = std::filesystem;

namespace {

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters other than tab and newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n')
          out += ' ';
        else
          out += c;
    }
  }
  return out;
}

}  // namespace

namespace {

// Ticks at 1, 2 or 5 times a power of ten, about `count` of them over [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int count) {
  std::vector<double> ticks;
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / count;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string tick_label(double v) { return format_printf("%g", v); }

struct Axis {
  double lo = 0, hi = 1;
  double from = 0, to = 1;  // pixels
  double map(double v) const { return from + (v - lo) / (hi - lo) * (to - from); }
};

// The x axis: linear, or log for alpha > 0 with alpha 0 in a slot of its own.
struct XAxis {
  bool log = false;
  Axis axis;           // in alpha (linear) or log10(alpha) (log)
  double zero_x = 0;   // log: where alpha 0 sits
  double break_x = 0;  // log: where the axis break is drawn
  double map(double alpha) const {
    if (!log) return axis.map(alpha);
    if (alpha <= 0) return zero_x;
    return axis.map(std::log10(alpha));
  }
};

class Svg {
 public:
  void add(const std::string& element) { body_ += element + "\n"; }
  void line(double x1, double y1, double x2, double y2, const std::string& style) {
    add(str("<line x1=\"", px(x1), "\" y1=\"", px(y1), "\" x2=\"", px(x2), "\" y2=\"", px(y2),
            "\" ", style, "/>"));
  }
  void text(double x, double y, const std::string& content, const std::string& attributes) {
    add(str("<text x=\"", px(x), "\" y=\"", px(y), "\" ", attributes, ">", xml_escape(content),
            "</text>"));
  }
  static std::string px(double v) { return format_printf("%.1f", v); }
  const std::string& body() const { return body_; }

 private:
  std::string body_;
};

constexpr double kWidth = 760;
constexpr double kLeft = 90, kRight = 730;

void draw_panel(Svg& svg, const XAxis& x, const PlotSeries& series, double top, double bottom,
                double best_alpha) {
  // y range over the values (and error bars) that exist
  double lo = INFINITY, hi = -INFINITY;
  for (const PlotPoint& p : series.points) {
    if (!std::isfinite(p.value)) continue;
    const double e = std::isfinite(p.se) ? p.se : 0;
    lo = std::min(lo, p.value - e);
    hi = std::max(hi, p.value + e);
  }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  const double pad = 0.08 * (hi - lo);
  Axis y{lo - pad, hi + pad, bottom, top};

  svg.add(str("<rect x=\"", kLeft, "\" y=\"", top, "\" width=\"", kRight - kLeft, "\" height=\"",
              bottom - top, "\" fill=\"none\" stroke=\"#444\"/>"));
  for (double t : nice_ticks(y.lo, y.hi, 5)) {
    const double py = y.map(t);
    svg.line(kLeft - 5, py, kLeft, py, "stroke=\"#444\"");
    svg.line(kLeft, py, kRight, py, "stroke=\"#ddd\"");
    svg.text(kLeft - 8, py + 4, tick_label(t), "text-anchor=\"end\"");
  }
  svg.add(str("<text transform=\"translate(", kLeft - 60, ",", Svg::px((top + bottom) / 2),
              ") rotate(-90)\" text-anchor=\"middle\">", xml_escape(series.label), "</text>"));

  // best alpha: a dashed vertical line
  const double bx = x.map(best_alpha);
  svg.line(bx, top, bx, bottom, "stroke=\"#d62728\" stroke-dasharray=\"5,4\"");

  const std::string& color = series.color;
  std::vector<PlotPoint> points = series.points;
  std::stable_sort(points.begin(), points.end(),
                   [](const PlotPoint& a, const PlotPoint& b) { return a.alpha < b.alpha; });
  // A line through the points; on a log axis the step from alpha 0 across the break is dashed.
  std::string line;
  bool first_point = true;
  for (const PlotPoint& p : points) {
    if (!std::isfinite(p.value)) continue;
    const std::string point = str(Svg::px(x.map(p.alpha)), ",", Svg::px(y.map(p.value)), " ");
    if (x.log && p.alpha == 0) {
      line = point;
      continue;
    }
    if (x.log && first_point && !line.empty()) {
      svg.add(str("<polyline points=\"", line, point, "\" fill=\"none\" stroke=\"", color,
                  "\" stroke-width=\"1\" stroke-dasharray=\"3,3\"/>"));
      line.clear();
    }
    first_point = false;
    line += point;
  }
  if (!line.empty())
    svg.add(str("<polyline points=\"", line, "\" fill=\"none\" stroke=\"", color,
                "\" stroke-width=\"1.5\"/>"));
  for (const PlotPoint& p : points) {
    if (!std::isfinite(p.value)) continue;
    const double px = x.map(p.alpha), py = y.map(p.value);
    if (std::isfinite(p.se)) {
      const double y1 = y.map(p.value - p.se), y2 = y.map(p.value + p.se);
      svg.line(px, y1, px, y2, str("stroke=\"", color, "\""));
      svg.line(px - 4, y1, px + 4, y1, str("stroke=\"", color, "\""));
      svg.line(px - 4, y2, px + 4, y2, str("stroke=\"", color, "\""));
    }
    const bool best = p.alpha == best_alpha;
    svg.add(str("<circle cx=\"", Svg::px(px), "\" cy=\"", Svg::px(py), "\" r=\"", best ? 5.5 : 3.5,
                "\" fill=\"", best ? "#d62728" : color, "\"/>"));
  }
  // reference lines: dotted, labelled at the right end
  for (const PlotReference& r : series.references) {
    if (!std::isfinite(r.value) || r.value < y.lo || r.value > y.hi) continue;
    const double py = y.map(r.value);
    svg.line(kLeft, py, kRight, py, str("stroke=\"", color, "\" stroke-dasharray=\"1,3\""));
    svg.text(kRight - 4, py - 4, r.label, str("fill=\"", color, "\" text-anchor=\"end\""));
  }
}

}  // namespace

std::string render_svg(std::span<const AlphaSummary> summaries, double best_alpha,
                       const std::string& title, std::span<const PlotSeries> extra_panels) {
  // Panels, top to bottom: reward, the extra ones, answer length.
  std::vector<PlotSeries> panels;
  PlotSeries reward{"mean reward (± s.e.)", "#1f77b4", {}, {}};
  PlotSeries length{"mean answer length (tokens)", "#2ca02c", {}, {}};
  for (const AlphaSummary& s : sorted_by_alpha(summaries)) {
    reward.points.push_back({s.alpha, s.mean_reward, s.reward_se});
    length.points.push_back({s.alpha, s.mean_answer_tokens, AlphaSummary::kNaN});
  }
  panels.push_back(reward);
  panels.insert(panels.end(), extra_panels.begin(), extra_panels.end());
  panels.push_back(length);
  return render_plot(panels, best_alpha, title);
}

std::string render_plot(std::span<const PlotSeries> panels, double best_alpha,
                        const std::string& title) {
  if (panels.empty()) fail("plot: no panels");
  double min_positive = INFINITY, max_alpha = 0;
  for (const PlotSeries& panel : panels)
    for (const PlotPoint& p : panel.points) {
      if (p.alpha > 0) min_positive = std::min(min_positive, p.alpha);
      max_alpha = std::max(max_alpha, p.alpha);
    }
  XAxis x;
  x.log = std::isfinite(min_positive) && max_alpha / min_positive >= 10;
  std::vector<std::pair<double, std::string>> ticks;  // alpha, label
  if (x.log) {
    x.zero_x = kLeft + 25;
    x.break_x = kLeft + 50;
    const double lo = std::log10(min_positive) - 0.1, hi = std::log10(max_alpha) + 0.1;
    x.axis = {lo, hi, kLeft + 75, kRight - 15};
    ticks.push_back({0.0, "0"});
    const bool minors = hi - lo <= 3.5;  // 2 and 5 between the decades when few decades
    for (int k = static_cast<int>(std::floor(lo)); k <= static_cast<int>(std::ceil(hi)); ++k) {
      for (double m : {1.0, 2.0, 5.0}) {
        if (m != 1 && !minors) continue;
        const double v = m * std::pow(10.0, k);
        const double lv = std::log10(v);
        if (lv >= lo && lv <= hi) ticks.push_back({v, tick_label(v)});
      }
    }
  } else {
    const double hi = max_alpha > 0 ? max_alpha * 1.05 : 1;
    x.axis = {-0.03 * hi, hi, kLeft + 15, kRight - 15};
    for (double t : nice_ticks(0, hi, 6)) ticks.push_back({t, tick_label(t)});
  }

  // the first panel 260 px high, the others 190, 30 px between them
  std::vector<std::pair<double, double>> spans;
  double y = 45;
  for (size_t i = 0; i < panels.size(); ++i) {
    const double h = i == 0 ? 260 : 190;
    spans.push_back({y, y + h});
    y += h + 30;
  }
  const double last_bottom = spans.back().second;
  const double height = last_bottom + 75;

  Svg svg;
  svg.add("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
  svg.text(kWidth / 2, 24, title, "text-anchor=\"middle\" font-size=\"16\"");
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(svg, x, panels[i], spans[i].first, spans[i].second, best_alpha);

  for (const auto& [top, bottom] : spans) {
    for (const auto& [alpha, label] : ticks) {
      const double px = x.map(alpha);
      svg.line(px, bottom, px, bottom + 5, "stroke=\"#444\"");
      if (bottom == last_bottom) svg.text(px, bottom + 18, label, "text-anchor=\"middle\"");
    }
    if (x.log) {  // the axis break between alpha 0 and the log range
      svg.add(str("<rect x=\"", x.break_x - 5, "\" y=\"", bottom - 6,
                  "\" width=\"10\" height=\"12\""
                  " fill=\"white\"/>"));
      svg.line(x.break_x - 6, bottom + 6, x.break_x - 2, bottom - 6, "stroke=\"#444\"");
      svg.line(x.break_x + 2, bottom + 6, x.break_x + 6, bottom - 6, "stroke=\"#444\"");
    }
  }
  svg.text((kLeft + kRight) / 2, last_bottom + 40,
           x.log ? "alpha (log scale; 0 = the aligned model, left of the break)"
                 : "alpha (0 = the aligned model)",
           "text-anchor=\"middle\"");
  const double bx = x.map(best_alpha);
  const double top1 = spans.front().first;
  svg.text(std::min(bx + 6, kRight - 4), top1 + 16, str("best alpha = ", format_alpha(best_alpha)),
           str("fill=\"#d62728\" text-anchor=\"", bx + 120 > kRight ? "end" : "start", "\""));

  return str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", kWidth, "\" height=\"", height,
             "\" viewBox=\"0 0 ", kWidth, " ", height,
             "\" font-family=\"sans-serif\" font-size=\"12\">\n", svg.body(), "</svg>\n");
}

// ---- PNG ----

namespace {

bool is_png(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  return in.gcount() == 8 && std::string_view(magic, 8) == "\x89PNG\r\n\x1a\n";
}

}  // namespace

bool convert_svg_to_png(const fs::path& svg, const fs::path& png, std::string& note) {
  const fs::path temp = png.parent_path() / str(".", png.stem().string(), ".expo-tmp.png");
  std::error_code ec;
  std::vector<std::string> tried;
  for (const char* name : {"rsvg-convert", "convert"}) {
    const auto tool = find_on_path(name);
    if (!tool) continue;
    tried.push_back(name);
    fs::remove(temp, ec);
    const std::vector<std::string> args =
        std::string(name) == "rsvg-convert"
            ? std::vector<std::string>{tool->string(), "-o", temp.string(), svg.string()}
            : std::vector<std::string>{tool->string(), svg.string(), temp.string()};
    if (run_quietly(args) == 0 && is_png(temp)) {
      fs::rename(temp, png, ec);
      if (!ec) return true;
    }
    fs::remove(temp, ec);
  }
  note = tried.empty() ? "no PNG: neither rsvg-convert nor convert (ImageMagick) was found on PATH"
                       : str("no PNG: ", tried.size() == 1 ? tried[0] : "rsvg-convert and convert",
                             " did not produce one");
  return false;
}

}  // namespace expo
