#include "merge/extrapolate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include <expo/version.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "core/serial_worker.h"
#include "core/staging_dir.h"
#include "core/units.h"
#include "io/safetensors_writer.h"
#include "io/sharding.h"
#include "merge/aux_files.h"
#include "merge/extrapolate_tensor.h"

namespace expo {

namespace {

std::map<std::string, std::string> output_metadata(const OutputSources& sources,
                                                   const ExtrapolateOptions& options,
                                                   const OutputSpec& output) {
  std::map<std::string, std::string> metadata{
      {"format", "pt"}, {"expo_version", EXPO_VERSION}, {"expo_alpha", output.alpha.text}};
  for (const auto& in : sources.inputs) metadata["expo_" + in.role] = in.spec;
  std::string rules;
  for (const auto& r : options.rule_texts) rules += (rules.empty() ? "" : ";") + r;
  if (!rules.empty()) metadata["expo_rules"] = rules;
  return metadata;
}

// Streams plan entries into every output file (stream_entry's sink). Each chunk of a tensor is
// read (pread) into one set of buffers and computed there by the pool, while a background
// writer hands the previous chunk, from the other set, to the disk.
class EntryWriter final : public ChunkSink {
 public:
  EntryWriter(const Plan& plan, const ExtrapolateOptions& options, ThreadPool& pool)
      : options_(options), pool_(pool) {
    size_t in_size = 1, out_size = 1;
    for (const auto& e : plan.entries) {
      in_size = std::max(in_size, dtype_size(e.aligned->info->dtype));
      if (e.sft) in_size = std::max(in_size, dtype_size(e.sft->info->dtype));
      out_size = std::max(out_size, dtype_size(e.out_dtype));
    }
    for (const auto& o : options.outputs) alphas_.push_back(o.alpha.value);
    for (auto& slot : slots_) {
      slot.aligned.resize(kEntryChunkElements * in_size);
      slot.sft.resize(kEntryChunkElements * in_size);
      slot.out.resize(options.outputs.size());
      for (auto& b : slot.out) {
        b.resize(kEntryChunkElements * out_size);
        slot.out_data.push_back(b.data());
      }
    }
  }

  // Returns when everything submitted so far is written.
  void finish() { writer_.wait_all(); }
  // After an error: drops pending writes before the files they point at are closed.
  void abandon() { writer_.abandon(); }

  void write(const PlanEntry& entry, std::vector<OutputFile>& files, Progress& progress) {
    entry_ = &entry;
    files_ = &files;
    progress_ = &progress;
    stream_entry(entry, alphas_, options_.allow_nonfinite, *this, pool_);
    progress.add(1, 0);
  }

  ChunkBuffers buffers(const EntryChunk&) override {
    Slot& slot = slots_[next_slot_];
    next_slot_ ^= 1;
    writer_.wait(slot.ticket);  // the writes that last used this slot are done
    current_ = &slot;
    return {slot.aligned.data(), slot.sft.data(), slot.out_data};
  }

  void done(const EntryChunk& chunk) override {
    Slot& slot = *current_;
    const uint64_t aligned_bytes = chunk.count * dtype_size(entry_->aligned->info->dtype);
    if (chunk.byte_copy) {
      for (auto& f : *files_)
        slot.ticket = writer_.submit(
            [&f, data = slot.aligned.data(), bytes = aligned_bytes] { f.write(data, bytes); });
    } else {
      const uint64_t bytes = chunk.count * dtype_size(entry_->out_dtype);
      for (size_t k = 0; k < files_->size(); ++k)
        slot.ticket = writer_.submit(
            [&f = (*files_)[k], data = slot.out[k].data(), bytes] { f.write(data, bytes); });
    }
    progress_->add(0, aligned_bytes);
  }

 private:
  struct Slot {
    std::vector<uint8_t> aligned, sft;
    std::vector<std::vector<uint8_t>> out;  // one per output
    std::vector<uint8_t*> out_data;         // out[k].data()
    uint64_t ticket = 0;                    // the last write job that reads this slot
  };

  const ExtrapolateOptions& options_;
  ThreadPool& pool_;
  std::vector<double> alphas_;  // one per output
  Slot slots_[2];
  size_t next_slot_ = 0;
  Slot* current_ = nullptr;  // between buffers() and done()
  const PlanEntry* entry_ = nullptr;
  std::vector<OutputFile>* files_ = nullptr;
  Progress* progress_ = nullptr;
  SerialWorker writer_;  // declared last: stopped before the buffers go away
};

}  // namespace

const OutputSources::Input* OutputSources::find(const std::string& role) const {
  for (const auto& in : inputs)
    if (in.role == role) return &in;
  return nullptr;
}

OutputSources checkpoint_sources(const Checkpoint& sft, const Checkpoint& aligned) {
  OutputSources s;
  s.inputs.push_back({"sft", sft.spec(), &sft, sft.folder(), false});
  s.inputs.push_back({"aligned", aligned.spec(), &aligned, aligned.folder(), false});
  s.aux_folder = aligned.folder();
  return s;
}

void check_outputs(const OutputSources& sources, const ExtrapolateOptions& options) {
  if (options.outputs.empty()) fail("no output given");
  std::set<fs::path> seen;
  std::vector<fs::path> inputs;
  for (const auto& in : sources.inputs) {
    if (!in.folder.empty()) inputs.push_back(canonical_or_absolute(in.folder));
    for (const auto& t : in.weights->tensors())
      inputs.push_back(canonical_or_absolute(t.file->path()));
  }
  for (const auto& out : options.outputs) {
    const fs::path target = canonical_or_absolute(out.dir);
    if (!seen.insert(target).second)
      fail("output ", out.dir.string(),
           " is given twice; with several alphas, put {alpha} in "
           "--output");
    for (const auto& in : inputs)
      if (is_same_or_ancestor(target, in))
        fail("output ", out.dir.string(), " would overwrite an input (", in.string(),
             "); choose another --output");
    check_output_target(out.dir, options.force);
    if (options.force)
      check_force_target(out.dir, options.force_any, is_expo_model_folder,
                         "a model folder expo wrote (README.md is expo's model card) or an "
                         "empty folder",
                         "--force-any-folder");
  }
}

std::vector<std::vector<size_t>> plan_output_shards(const Plan& plan, uint64_t max_shard_size) {
  std::vector<uint64_t> sizes;
  for (const auto& e : plan.entries) sizes.push_back(e.out_bytes());
  return plan_shards(sizes, max_shard_size);
}

std::string describe_plan(const OutputSources& sources, const Plan& plan,
                          const ExtrapolateOptions& options) {
  const auto shards = sources.adapter_output ? std::vector<std::vector<size_t>>{{}}
                                             : plan_output_shards(plan, options.max_shard_size);
  std::string s;
  auto line = [&](const std::string& text) { s += text + "\n"; };
  auto describe = [](const Checkpoint& c) {
    return c.spec() + " (" + std::to_string(c.tensors().size()) + " tensors, " +
           format_bytes(c.total_bytes()) + " in " + std::to_string(c.num_files()) + " file(s))";
  };
  line("dry run: nothing is written");
  for (const auto& in : sources.inputs) {
    std::string label = in.role + ":";
    label.resize(std::max<size_t>(label.size() + 1, 9), ' ');
    line(label + describe(*in.weights) + (in.adapter ? " [PEFT adapter]" : ""));
  }
  const bool lora = plan.count(Action::kLora) + plan.count(Action::kScale) > 0 ||
                    sources.find("base") || sources.adapter_output;
  if (!lora)
    line("tensors: " + std::to_string(plan.count(Action::kExtrapolate)) + " extrapolated, " +
         std::to_string(plan.count(Action::kExtrapolateRows)) + " extrapolated on shared rows, " +
         std::to_string(plan.count(Action::kCopyAligned)) + " copied from aligned");
  else if (sources.adapter_output)
    line("tensors: " + std::to_string(plan.count(Action::kScale)) +
         " lora_B scaled by (1 + alpha), " + std::to_string(plan.count(Action::kExtrapolate)) +
         " full tensors extrapolated, " + std::to_string(plan.count(Action::kCopyAligned)) +
         " copied");
  else
    line("tensors: " + std::to_string(plan.count(Action::kLora)) + " LoRA-adapted, " +
         std::to_string(plan.count(Action::kExtrapolate)) + " full tensors extrapolated, " +
         std::to_string(plan.count(Action::kCopyAligned)) + " copied from " +
         (sources.find("base") ? "base" : "sft"));
  for (const auto& e : plan.entries) {
    if (e.action == Action::kExtrapolateRows)
      line("  rows   " + e.name() + ": " + std::to_string(e.shared_rows) + " of " +
           std::to_string(e.shape()[0]) + " rows extrapolated, " +
           std::to_string(e.shape()[0] - e.shared_rows) + " copied");
    else if (e.action == Action::kCopyAligned && !lora)
      line("  copy   " + e.name() + " (" + std::string(dtype_name(e.aligned->info->dtype)) + ")");
    else if (e.action == Action::kLora)
      line("  lora   " + e.name() + " (" +
           (e.aligned_lora ? "rank " + std::to_string(e.aligned_lora->rank) + ", s " +
                                 format_double(e.aligned_lora->scale)
                           : std::string("theta1 unadapted")) +
           (e.lora_pair ? (e.sft_lora ? "; theta0 rank " + std::to_string(e.sft_lora->rank) +
                                            ", s " + format_double(e.sft_lora->scale)
                                      : std::string("; theta0 unadapted"))
                        : "") +
           ")");
    if (e.rule)
      line("  rule   " + e.name() + ": alpha " + e.rule->alpha.text + " (--rule " +
           e.rule->pattern + ")");
  }
  for (const auto& n : plan.notes) line("note: " + n);
  for (const auto& w : plan.warnings) line("warning: " + w);
  if (plan.output_tied) line("output ties its embeddings, as the aligned model does");
  if (sources.adapter_output)
    line("each output: a PEFT adapter, adapter_model.safetensors, " +
         format_bytes(plan.out_bytes()));
  else
    line("each output: " + std::to_string(shards.size()) + " shard(s), " +
         format_bytes(plan.out_bytes()) + " (max shard size " +
         format_bytes(options.max_shard_size) + ")");
  for (size_t i = 0; i < shards.size() && !sources.adapter_output; ++i) {
    uint64_t bytes = 0;
    for (size_t t : shards[i]) bytes += plan.entries[t].out_bytes();
    line("  " + shard_file_name(i, shards.size()) + ": " + std::to_string(shards[i].size()) +
         " tensors, " + format_bytes(bytes));
  }
  for (const auto& o : options.outputs)
    line("output: " + o.dir.string() + " (alpha " + o.alpha.text + ")");
  line("bytes to write: " + format_bytes(plan.out_bytes() * options.outputs.size()));
  return s;
}

void extrapolate_checkpoints(const OutputSources& sources, const Plan& plan,
                             const ExtrapolateOptions& options, ThreadPool& pool) {
  check_outputs(sources, options);
  std::vector<std::vector<size_t>> shards;
  if (sources.adapter_output) {  // PEFT loads one adapter_model.safetensors
    shards.emplace_back();
    for (size_t i = 0; i < plan.entries.size(); ++i) shards[0].push_back(i);
  } else {
    shards = plan_output_shards(plan, options.max_shard_size);
  }
  const size_t num_outputs = options.outputs.size();

  std::vector<std::unique_ptr<StagingDir>> staging;
  for (const auto& o : options.outputs) staging.push_back(std::make_unique<StagingDir>(o.dir));

  uint64_t input_bytes = 0;
  for (const auto& e : plan.entries) input_bytes += e.aligned->info->num_bytes();
  Progress progress("extrapolate", plan.entries.size(), input_bytes, options.progress);
  EntryWriter writer(plan, options, pool);

  std::vector<std::string> names;
  std::vector<size_t> shard_of;
  for (size_t shard = 0; shard < shards.size(); ++shard) {
    std::vector<TensorLayout> layouts;
    for (size_t t : shards[shard]) {
      const PlanEntry& e = plan.entries[t];
      layouts.push_back({e.name(), e.out_dtype, e.shape()});
      names.push_back(e.name());
      shard_of.push_back(shard);
    }
    const std::string file_name = sources.adapter_output ? "adapter_model.safetensors"
                                                         : shard_file_name(shard, shards.size());
    std::vector<OutputFile> files;
    files.reserve(num_outputs);
    for (size_t k = 0; k < num_outputs; ++k) {
      const auto layout =
          layout_safetensors(layouts, output_metadata(sources, options, options.outputs[k]));
      files.emplace_back(staging[k]->path() / file_name, /*direct=*/true);
      files.back().write(layout.header_bytes.data(), layout.header_bytes.size());
    }
    try {
      for (size_t t : shards[shard]) writer.write(plan.entries[t], files, progress);
      writer.finish();
    } catch (...) {
      writer.abandon();
      throw;
    }
    for (auto& f : files) {
      f.start_writeback();
      f.close();
    }
  }
  progress.finish();

  for (size_t k = 0; k < num_outputs; ++k) {
    const fs::path dir = staging[k]->path();
    if (shards.size() > 1)
      write_text_file(
          dir / "model.safetensors.index.json",
          make_shard_index(names, shard_of, shards.size(), plan.out_bytes()).dump(2) + "\n");
    if (!sources.aux_folder.empty())
      copy_auxiliary_files(sources.aux_folder, dir,
                           sources.adapter_output ? std::nullopt : options.dtype);
    if (!sources.tokenizer_folder.empty()) copy_tokenizer_files(sources.tokenizer_folder, dir);
    ModelCard card;
    for (const auto& in : sources.inputs) {
      std::string& field = in.role == "sft"       ? card.sft
                           : in.role == "aligned" ? card.aligned
                                                  : card.base;
      field = in.spec;
      if (in.adapter) field += " (PEFT adapter)";
    }
    card.adapter_output = sources.adapter_output;
    card.alpha = options.outputs[k].alpha.text;
    card.rules = options.rule_texts;
    card.dtype = options.dtype ? std::string(dtype_name(*options.dtype)) : "";
    card.command = options.command_line;
    card.version = EXPO_VERSION;
    write_text_file(dir / "README.md", render_model_card(card));
  }
  // Everything is flushed to the disk before it gets the output's name.
  for (auto& s : staging) sync_folder(s->path());
  check_interrupted();
  for (auto& s : staging) s->commit(options.force);
}

}  // namespace expo
