#include "merge/diff.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/interrupt.h"
#include "core/progress.h"

namespace expo {

void DeltaSums::add(const DeltaSums& o) {
  delta_sq += o.delta_sq;
  aligned_sq += o.aligned_sq;
  sft_sq += o.sft_sq;
  dot += o.dot;
  elements += o.elements;
}
double DeltaSums::delta_norm() const { return std::sqrt(delta_sq); }
double DeltaSums::relative() const {
  return aligned_sq > 0 ? std::sqrt(delta_sq) / std::sqrt(aligned_sq) : 0.0;
}
double DeltaSums::cosine() const {
  const double denom = std::sqrt(aligned_sq) * std::sqrt(sft_sq);
  return denom > 0 ? dot / denom : (aligned_sq == 0 && sft_sq == 0 ? 1.0 : 0.0);
}

std::string layer_group(const std::string& name) {
  static const std::regex layer(R"((?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.)");
  std::smatch m;
  if (std::regex_search(name, m, layer)) return "layer " + m[1].str();
  return "(outside layers)";
}

DeltaSums delta_sums_reference(const void* a, DType a_dtype, const void* s, DType s_dtype,
                               uint64_t count) {
  DeltaSums sums;
  for (uint64_t i = 0; i < count; ++i) {
    const double av = load_as_double(a, a_dtype, i);
    const double sv = load_as_double(s, s_dtype, i);
    const double d = av - sv;
    sums.delta_sq += d * d;
    sums.aligned_sq += av * av;
    sums.sft_sq += sv * sv;
    sums.dot += av * sv;
  }
  sums.elements = count;
  return sums;
}

DiffReport diff_checkpoints(const Plan& plan, ThreadPool& pool, bool show_progress) {
  constexpr uint64_t kTask = uint64_t{1} << 16;
  DiffReport report;
  uint64_t total_bytes = 0;
  for (const auto& e : plan.entries) total_bytes += e.aligned->info->num_bytes();
  Progress progress("diff", plan.entries.size(), total_bytes, show_progress);
  std::map<std::string, size_t> group_index;
  for (const auto& e : plan.entries) {
    check_interrupted();
    const CheckpointTensor& a = *e.aligned;
    if (e.action == Action::kCopyAligned) {
      report.skipped.push_back(e.name() + (e.sft ? ""
                                           : is_arithmetic_float(a.info->dtype)
                                               ? ": not in both models"
                                               : ": not a float tensor"));
      progress.add(1, a.info->num_bytes());
      continue;
    }
    const CheckpointTensor& s = *e.sft;
    uint64_t count = e.num_elements();
    if (e.action == Action::kExtrapolateRows) {
      count = e.shared_rows * (e.shape()[0] ? count / e.shape()[0] : 0);
      report.skipped.push_back(e.name() + ": compared on its " + std::to_string(e.shared_rows) +
                               " shared rows only");
    }
    const size_t a_size = dtype_size(a.info->dtype), s_size = dtype_size(s.info->dtype);
    const size_t tasks = (count + kTask - 1) / kTask;
    std::vector<DeltaSums> partial(tasks);
    pool.parallel_for(tasks, [&](size_t t) {
      const uint64_t first = t * kTask;
      const uint64_t n = std::min(kTask, count - first);
      partial[t] = delta_sums_reference(a.data() + first * a_size, a.info->dtype,
                                        s.data() + first * s_size, s.info->dtype, n);
      a.file->release(*a.info, first * a_size, n * a_size);
      s.file->release(*s.info, first * s_size, n * s_size);
    });
    TensorDelta td{e.name(), layer_group(e.name()), {}};
    for (const auto& p : partial) td.sums.add(p);  // fixed order: thread-count independent
    auto [it, inserted] = group_index.emplace(td.group, report.groups.size());
    if (inserted) report.groups.push_back({td.group, {}});
    report.groups[it->second].sums.add(td.sums);
    report.total.add(td.sums);
    report.tensors.push_back(std::move(td));
    progress.add(1, a.info->num_bytes());
  }
  progress.finish();
  return report;
}

namespace {
std::string row(const std::string& name, const DeltaSums& s, size_t width) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "  %12.6g  %12.6g  %10.6f", s.delta_norm(), s.relative(),
                s.cosine());
  std::string padded = name;
  if (padded.size() < width) padded.append(width - padded.size(), ' ');
  return padded + buf + "\n";
}

nlohmann::ordered_json sums_json(const DeltaSums& s) {
  return {{"elements", s.elements},
          {"delta_norm", s.delta_norm()},
          {"relative_delta", s.relative()},
          {"cosine", s.cosine()}};
}
}  // namespace

std::string format_diff_table(const DiffReport& report) {
  size_t width = 24;
  for (const auto& t : report.tensors) width = std::max(width, t.name.size());
  std::string header = "tensor";
  header.append(width - header.size(), ' ');
  std::string out = header + "    |aligned-sft|  |delta|/|aligned|    cosine\n";
  for (const auto& t : report.tensors) out += row(t.name, t.sums, width);
  out += "\n";
  std::string group_header = "layer";
  group_header.append(width - group_header.size(), ' ');
  out += group_header + "    |aligned-sft|  |delta|/|aligned|    cosine\n";
  for (const auto& g : report.groups) out += row(g.group, g.sums, width);
  out += row("(whole model)", report.total, width);
  for (const auto& s : report.skipped) out += "note: " + s + "\n";
  return out;
}

std::string format_diff_json(const DiffReport& report, const std::string& sft,
                             const std::string& aligned) {
  nlohmann::ordered_json j;
  j["sft"] = sft;
  j["aligned"] = aligned;
  j["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : report.tensors) {
    auto o = sums_json(t.sums);
    o["name"] = t.name;
    o["group"] = t.group;
    j["tensors"].push_back(o);
  }
  j["layers"] = nlohmann::ordered_json::array();
  for (const auto& g : report.groups) {
    auto o = sums_json(g.sums);
    o["group"] = g.group;
    j["layers"].push_back(o);
  }
  j["total"] = sums_json(report.total);
  j["notes"] = report.skipped;
  return j.dump(2) + "\n";
}

}  // namespace expo
