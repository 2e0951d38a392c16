#pragma once
// Outputs that appear whole or not at all: a staging folder beside the target, renamed into
// place only when complete. Each staging folder holds an owner file (the process, its start
// time, the boot and the host), so that a later run can tell the temporaries of a run that
// died (kill -9, power loss) from those of a run still going, and remove only the former.
// Also what --force may replace.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace expo {

namespace fs = std::filesystem;

// A temporary folder beside `target` (same file system, so the final rename is atomic), named
// ".NAME.expo-tmp-XXXXXX". It is removed on destruction unless commit() moved it into place.
// Creating one first cleans up the abandoned temporaries in the same folder (see
// clean_leftover_temps), with a note on stderr for each.
class StagingDir {
 public:
  explicit StagingDir(const fs::path& target);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  const fs::path& path() const { return staging_; }
  const fs::path& target() const { return target_; }
  // Renames the staging folder to the target. An existing target is replaced only if `force`:
  // it is first moved aside into ".NAME.expo-old-XXXXXX" (with an owner file), then removed.
  void commit(bool force);

 private:
  fs::path target_;
  fs::path staging_;
  bool committed_ = false;
};

// Refuses early (before any work) when `target` exists and `force` is not set.
void check_output_target(const fs::path& target, bool force);

// What --force may replace. Throws UsageError, unless `force_any`, when an existing `target`
// is the current folder, one of its ancestors, the home folder or "/", or is not a folder
// that `written_by_expo` recognizes (an empty folder always is). `what` names the kind of
// folder ("a model folder expo wrote"); `force_any_flag` the flag that overrides the check.
void check_force_target(const fs::path& target, bool force_any,
                        const std::function<bool(const fs::path&)>& written_by_expo,
                        const std::string& what, const std::string& force_any_flag);

struct LeftoverTemp {
  enum class Action { kRemoved, kRestored, kReported };
  fs::path path;
  uint64_t bytes = 0;
  Action action = Action::kReported;
  std::string detail;  // whose it was, or why it was left alone
};

// Looks in `dir` for expo's temporary folders (".NAME.expo-tmp-XXXXXX", ".NAME.expo-old-XXXXXX").
// One whose owner file names a process of this machine and boot that is no longer running is
// removed; the previous output that a replacement moved aside and never put back (the run died
// between its two renames) is moved back to its name instead. One without a readable owner file
// (written by an older expo, or a run killed within microseconds of starting) is only reported,
// with its size. Folders of running processes, and of other machines, are left alone. Never
// throws: a folder that cannot be read or removed is reported.
std::vector<LeftoverTemp> clean_leftover_temps(const fs::path& dir);

// One line per leftover for stderr: "removed ... (650 MB), left by process 1234 ...".
std::string describe_leftover(const LeftoverTemp& leftover);

}  // namespace expo
