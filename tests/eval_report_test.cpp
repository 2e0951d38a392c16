// The search report: the Markdown table on hand-made numbers, the SVG plot well-formed (a
// minimal XML check here, and Python's xml.etree where /usr/bin/python3 exists), report.md.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/fs.h"
#include "eval/plot.h"
#include "eval/report.h"
#include "merge/alpha_rules.h"
#include "test_util.h"

namespace expo {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

AlphaSummary row(double alpha, double mean, double se, double win, double tokens, size_t failed = 0,
                 size_t truncated = 0) {
  AlphaSummary s;
  s.alpha = alpha;
  s.prompts = 10;
  s.scored = 10 - failed;
  s.mean_reward = mean;
  s.reward_se = se;
  s.win_rate = win;
  s.paired = s.scored;
  s.mean_answer_tokens = tokens;
  s.mean_answer_chars = 4 * tokens;
  s.failed = failed;
  s.truncated = truncated;
  return s;
}

// A small well-formedness check: balanced tags, quoted attributes, escaped text, one root.
// Returns "" when well-formed, else what is wrong.
std::string xml_problem(const std::string& xml) {
  size_t at = 0;
  std::vector<std::string> stack;
  bool had_root = false;
  auto valid_entity = [&](size_t amp) {
    const size_t semi = xml.find(';', amp);
    if (semi == std::string::npos || semi - amp > 10) return false;
    const std::string name = xml.substr(amp + 1, semi - amp - 1);
    return name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos" ||
           (name.size() > 1 && name[0] == '#');
  };
  if (xml.compare(0, 5, "<?xml") == 0) at = xml.find("?>") + 2;
  while (at < xml.size()) {
    if (xml[at] != '<') {  // text
      if (stack.empty() && !std::isspace(static_cast<unsigned char>(xml[at])))
        return "text outside the root element at " + std::to_string(at);
      if (xml[at] == '&' && !valid_entity(at)) return "bad entity at " + std::to_string(at);
      if (xml[at] == '>') return "raw > in text at " + std::to_string(at);
      ++at;
      continue;
    }
    const size_t end = xml.find('>', at);
    if (end == std::string::npos) return "unclosed tag";
    std::string tag = xml.substr(at + 1, end - at - 1);
    at = end + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1))
        return "mismatched </" + tag.substr(1) + ">";
      stack.pop_back();
      continue;
    }
    const bool self_closing = tag.back() == '/';
    if (self_closing) tag.pop_back();
    size_t i = 0;
    while (i < tag.size() && !std::isspace(static_cast<unsigned char>(tag[i]))) ++i;
    const std::string name = tag.substr(0, i);
    if (name.empty() || !std::isalpha(static_cast<unsigned char>(name[0])))
      return "bad element name '" + name + "'";
    while (i < tag.size()) {  // attributes: name="value"
      while (i < tag.size() && std::isspace(static_cast<unsigned char>(tag[i]))) ++i;
      if (i == tag.size()) break;
      const size_t eq = tag.find('=', i);
      if (eq == std::string::npos || tag[eq + 1] != '"') return "unquoted attribute in <" + name;
      const size_t close = tag.find('"', eq + 2);
      if (close == std::string::npos) return "unterminated attribute in <" + name;
      const std::string value = tag.substr(eq + 2, close - eq - 2);
      if (value.find('<') != std::string::npos) return "< in an attribute of <" + name;
      i = close + 1;
    }
    if (stack.empty()) {
      if (had_root) return "a second root element <" + name + ">";
      had_root = true;
    }
    if (!self_closing) stack.push_back(name);
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (!had_root) return "no root element";
  return "";
}

TEST(Report, XmlCheckerCatchesMistakes) {
  EXPECT_EQ(xml_problem("<svg><g a=\"1\"/></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(xml_problem("<svg>a & b</svg>"), "");
  EXPECT_NE(xml_problem("<svg x=1></svg>"), "");
  EXPECT_NE(xml_problem("<svg></svg><svg></svg>"), "");
}

TEST(Report, TableMarksTheBestAlpha) {
  const std::vector<AlphaSummary> rows = {row(0.3, 1.25, 0.05, 0.6, 210.0, 0, 1),
                                          row(0, 1.0, 0.04, 0.5, 180.0),
                                          row(1, 0.5, kNaN, 0.25, 400.5, 2, 3)};
  const std::string table = format_table(rows, 0.3);
  EXPECT_EQ(table,
            "| alpha | mean reward ± s.e. | win rate vs alpha 0 | mean length (tokens) | mean "
            "length (chars) | failed | truncated |\n"
            "|---:|---:|---:|---:|---:|---:|---:|\n"
            "| 0 | 1.0000 ± 0.0400 | (baseline) | 180.0 | 720.0 | 0/10 | 0/10 |\n"
            "| **0.3** (best) | 1.2500 ± 0.0500 | 60.0% | 210.0 | 840.0 | 0/10 | 1/10 |\n"
            "| 1 | 0.5000 ± n/a | 25.0% | 400.5 | 1602.0 | 2/10 | 3/10 |\n");
  EXPECT_EQ(format_alpha(0.3), "0.3");
  EXPECT_EQ(format_alpha(25), "25");
  EXPECT_EQ(format_alpha(0.618), "0.618");
}

void expect_valid_svg(const std::string& svg) {
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_FALSE(contains(svg, "nan")) << "a NaN coordinate";
  EXPECT_FALSE(contains(svg, "inf"));
  if (::access("/usr/bin/python3", X_OK) != 0) return;  // the independent check needs Python
  testing::TempDir dir;
  write_text_file(dir / "plot.svg", svg);
  const std::string command =
      "/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as E; "
      "r = E.parse(sys.argv[1]).getroot(); "
      "sys.exit(0 if r.tag == '{http://www.w3.org/2000/svg}svg' else 1)\" " +
      (dir / "plot.svg").string();
  EXPECT_EQ(std::system(command.c_str()), 0) << "xml.etree rejected the SVG";
}

TEST(Report, SvgLogAxisWithAlphaZeroSlot) {
  const std::vector<AlphaSummary> rows = {
      row(0, 1.0, 0.04, 0.5, 180),    row(0.1, 1.1, 0.04, 0.55, 190),
      row(0.3, 1.25, 0.05, 0.6, 210), row(1, 1.2, 0.05, 0.58, 260),
      row(3, 0.6, kNaN, 0.4, 500),    row(25, kNaN, kNaN, kNaN, kNaN, 10)};
  const std::string svg = render_svg(rows, 0.3, "zephyr <ExPO> & friends");
  expect_valid_svg(svg);
  EXPECT_TRUE(contains(svg, "zephyr &lt;ExPO&gt; &amp; friends"));
  EXPECT_TRUE(contains(svg, "best alpha = 0.3"));
  EXPECT_TRUE(contains(svg, "log scale"));
  EXPECT_TRUE(contains(svg, ">0<"));   // the alpha 0 slot's label
  EXPECT_TRUE(contains(svg, ">10<"));  // a decade tick
  EXPECT_TRUE(contains(svg, "mean reward"));
  EXPECT_TRUE(contains(svg, "mean answer length (tokens)"));
}

TEST(Report, SvgLinearAxisAndDegenerateInputs) {
  const std::vector<AlphaSummary> rows = {
      row(0, 1.0, 0.04, 0.5, 180), row(0.3, 1.25, 0.05, 0.6, 210), row(0.5, 1.2, 0.05, 0.58, 260)};
  const std::string svg = render_svg(rows, 0.3, "t");
  expect_valid_svg(svg);
  EXPECT_FALSE(contains(svg, "log scale"));
  expect_valid_svg(render_svg(std::vector<AlphaSummary>{row(0, 1, kNaN, 0.5, 10)}, 0, "one"));
  expect_valid_svg(render_svg(
      std::vector<AlphaSummary>{row(0, 1, 0, 0.5, 10), row(2, 1, 0, 0.5, 10)}, 0, "flat"));
}

TEST(Report, WritesReportFiles) {
  testing::TempDir dir;
  SearchOutcome o;
  for (double a : {0.0, 0.3, 1.0}) {
    AlphaResult r;
    r.alpha = a;
    r.rewards = {1 + a, 2 + a, 3 - a};
    r.answer_tokens = {10, 20, 30};
    r.answer_chars = {40, 80, 120};
    o.results.push_back(r);
  }
  for (const auto& r : o.results) o.summaries.push_back(summarize(r, &o.results[0]));
  o.best = 1;
  o.best_alpha = 0.3;
  o.method = "auto";
  o.stop_reason = "the bracket [0.25, 0.27] is within tol (0.1, relative) around the best alpha";
  o.evaluated = 2;
  o.resumed = 1;
  ReportOptions options;
  options.details = {"aligned model: zephyr-7b-beta", "prompts: alpaca_eval.json (3)"};
  const ReportFiles files = write_report(dir.path() / "out", o, options);
  EXPECT_EQ(files.markdown, dir.path() / "out" / "report.md");
  const std::string md = read_text_file(files.markdown);
  EXPECT_TRUE(contains(md, "**Best alpha: 0.3**")) << md;
  EXPECT_TRUE(contains(md, "highest mean reward"));
  EXPECT_TRUE(contains(md, "golden-section"));
  EXPECT_TRUE(contains(md, "Stopped because the bracket [0.25, 0.27] is within tol"));
  EXPECT_TRUE(contains(md, "2 evaluated in this run, 1 taken from results.jsonl"));
  EXPECT_TRUE(contains(md, "- aligned model: zephyr-7b-beta\n"));
  EXPECT_TRUE(contains(md, "| **0.3** (best) |"));
  EXPECT_TRUE(contains(md, "![reward and answer length against alpha](reward_vs_alpha.svg)"));
  expect_valid_svg(read_text_file(files.svg));
  if (files.png) {  // a converter was found and worked
    const std::string png = read_text_file(*files.png);
    EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
    EXPECT_TRUE(contains(md, "reward_vs_alpha.png"));
  } else {
    EXPECT_TRUE(contains(files.png_note, "no PNG")) << files.png_note;
    EXPECT_TRUE(contains(md, files.png_note));
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "out" / "reward_vs_alpha.png"));
  }
  // no temporary files left behind
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "out"))
    EXPECT_NE(entry.path().filename().string()[0], '.') << entry.path();

  options.png = false;
  const ReportFiles again = write_report(dir.path() / "out2", o, options);
  EXPECT_FALSE(again.png.has_value());
  EXPECT_TRUE(contains(read_text_file(again.markdown), "no PNG: not requested"));
}

}  // namespace
}  // namespace expo
