#pragma once
// The answers of a run in progress (expo generate --prompts --output OUT), kept beside the
// output as OUT.partial.jsonl: one line per finished prompt, appended and flushed the moment
// its last turn is done, so a kill, Ctrl-C or full disk loses nothing already generated. The
// final file is written in prompt order from them when every prompt is answered, and this file
// is removed. A rerun with --resume skips the prompts it answers.
//
//   {"expo_partial_answers": 1, "settings": {<the run's fingerprint>}}     first line
//   {"index", "id", "turns", "finish_reasons", "output_tokens"}           one per answer
//
// The settings line is what makes a resume safe: a rerun with other settings (models, prompts,
// sampling, ...) is refused with the differences listed, as `expo search --resume` does.
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/fingerprint.h"
#include "eval/answers.h"
#include "eval/prompt_set.h"

namespace expo {

class PartialAnswers {
 public:
  // "OUT.partial.jsonl" for the output OUT.
  static std::filesystem::path path_for(const std::filesystem::path& output);

  // Opens `path` for a run over `prompts` with `settings`:
  //  - it exists and `resume`: its settings must be `settings` (an error lists the differences)
  //    and its answers are loaded; a last line cut short by a crash is dropped and cut off;
  //  - it exists, without `resume` or `force`: an error that says to pass --resume or --force;
  //  - otherwise it is (re)created holding only the settings line.
  // The file stays locked (flock) while this object lives: another run opening the same path
  // is refused with an error saying that it is in use.
  PartialAnswers(const std::filesystem::path& path, const Fingerprint& settings,
                 const PromptSet& prompts, bool resume, bool force);
  ~PartialAnswers();
  PartialAnswers(const PartialAnswers&) = delete;
  PartialAnswers& operator=(const PartialAnswers&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // By prompt index: the answer read back (its prompt filled in), or nullopt.
  const std::vector<std::optional<Answer>>& loaded() const { return loaded_; }
  size_t loaded_count() const;
  // What was repaired at opening, for the command to print.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Writes prompt `index`'s complete answer as one line and flushes it to disk.
  void append(size_t index, const Answer& answer);
  // The final file is written: removes this one.
  void remove();

 private:
  void open_locked(const Fingerprint& settings, const PromptSet& prompts, bool resume, bool force);

  std::filesystem::path path_;
  int fd_ = -1;
  std::vector<std::optional<Answer>> loaded_;
  std::vector<std::string> warnings_;
};

}  // namespace expo
