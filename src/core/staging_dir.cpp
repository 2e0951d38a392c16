#include "core/staging_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/units.h"

namespace expo {

namespace {

constexpr const char* kOwnerFile = ".expo-owner";
constexpr const char* kOwnerHeader = "expo temporary folder";

// Who made a temporary folder: enough to tell, later, whether that process still runs.
struct Owner {
  long pid = -1;
  std::string start;  // the process's start time (clock ticks after boot, /proc/PID/stat)
  std::string boot;   // /proc/sys/kernel/random/boot_id: every process of another boot is gone
  std::string host;
  std::string target;  // the output's file name, for an "old" folder to be moved back
};

std::string read_small_file(const fs::path& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string text(max_bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(max_bytes));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string boot_id() { return trimmed(read_small_file("/proc/sys/kernel/random/boot_id", 64)); }

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

// Field 22 of /proc/PID/stat (the start time), "" when it cannot be read. The command name
// (field 2) is in parentheses and may hold spaces or parentheses: count from the last ')'.
std::string start_time_of(long pid) {
  const std::string stat = read_small_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(fields >> field)) return "";
  return field;
}

Owner self_owner(const std::string& target_name) {
  Owner o;
  o.pid = static_cast<long>(::getpid());
  o.start = start_time_of(o.pid);
  o.boot = boot_id();
  o.host = host_name();
  o.target = target_name;
  return o;
}

void write_owner(const fs::path& dir, const std::string& target_name) {
  const Owner o = self_owner(target_name);
  const fs::path file = dir / kOwnerFile;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << kOwnerHeader << "\npid " << o.pid << "\nstart " << o.start << "\nboot " << o.boot
      << "\nhost " << o.host << "\ntarget " << o.target << "\n";
  out.close();
  if (!out) fail(file.string(), ": cannot write the temporary folder's owner file");
}

std::optional<Owner> read_owner(const fs::path& dir) {
  std::istringstream in(read_small_file(dir / kOwnerFile, 4096));
  std::string line;
  if (!std::getline(in, line) || line != kOwnerHeader) return std::nullopt;
  Owner o;
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    const std::string key = line.substr(0, space);
    const std::string value = space == std::string::npos ? "" : line.substr(space + 1);
    if (key == "pid") {
      char* end = nullptr;
      errno = 0;
      const long pid = std::strtol(value.c_str(), &end, 10);
      if (errno == 0 && end && *end == '\0' && pid > 0) o.pid = pid;
    } else if (key == "start") {
      o.start = value;
    } else if (key == "boot") {
      o.boot = value;
    } else if (key == "host") {
      o.host = value;
    } else if (key == "target") {
      o.target = value;
    }
  }
  if (o.pid <= 0 || o.host.empty()) return std::nullopt;
  return o;
}

enum class OwnerState { kRunning, kGone, kUnknown };

OwnerState owner_state(const Owner& o) {
  if (o.host != host_name()) return OwnerState::kUnknown;  // another machine sharing the disk
  const std::string boot = boot_id();
  if (!o.boot.empty() && !boot.empty() && o.boot != boot) return OwnerState::kGone;
  if (::kill(static_cast<pid_t>(o.pid), 0) != 0 && errno == ESRCH) return OwnerState::kGone;
  // The process id is in use: by the owner, or by a later process that got the same id.
  const std::string start = start_time_of(o.pid);
  if (!start.empty() && !o.start.empty() && start != o.start) return OwnerState::kGone;
  return OwnerState::kRunning;
}

uint64_t folder_bytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const uint64_t size = it->file_size(size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}

std::string some_entries(const fs::path& dir) {
  std::string names;
  size_t count = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (count < 3) names += (count ? ", '" : "'") + it->path().filename().string() + "'";
    ++count;
  }
  return str(count, count == 1 ? " entry: " : " entries, e.g. ", names);
}

void note(const LeftoverTemp& leftover) {
  std::fprintf(stderr, "expo: note: %s\n", describe_leftover(leftover).c_str());
}

}  // namespace

StagingDir::StagingDir(const fs::path& target) : target_(fs::absolute(target).lexically_normal()) {
  if (target_.filename().empty()) target_ = target_.parent_path();
  const fs::path parent = target_.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) fail(parent.string(), ": cannot create output's parent folder: ", ec.message());
  for (const auto& leftover : clean_leftover_temps(parent)) note(leftover);
  std::string pattern =
      (parent / ("." + target_.filename().string() + ".expo-tmp-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr)
    fail(parent.string(), ": cannot create a temporary folder: ", std::strerror(errno));
  staging_ = pattern;
  try {
    write_owner(staging_, target_.filename().string());
  } catch (...) {
    fs::remove_all(staging_, ec);
    throw;
  }
  // mkdtemp makes the folder private (0700); a model folder gets the usual permissions.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(staging_.c_str(), 0777 & ~mask);
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

void StagingDir::commit(bool force) {
  std::error_code ec;
  // The owner file is the staging folder's, not the output's. Without it, a run killed from
  // here on leaves a folder that is reported rather than removed.
  fs::remove(staging_ / kOwnerFile, ec);
  if (fs::exists(fs::symlink_status(target_))) {
    if (!force) fail(target_.string(), ": already exists; use --force to replace it");
    std::string old_pattern =
        (target_.parent_path() / ("." + target_.filename().string() + ".expo-old-XXXXXX")).string();
    if (::mkdtemp(old_pattern.data()) == nullptr)
      fail(target_.string(), ": cannot prepare replacement: ", std::strerror(errno));
    write_owner(old_pattern, target_.filename().string());
    const fs::path old = fs::path(old_pattern) / "old";
    fs::rename(target_, old, ec);
    if (ec) {
      fs::remove_all(old_pattern, ec);
      fail(target_.string(), ": cannot move the existing output aside: ", ec.message());
    }
    fs::rename(staging_, target_, ec);
    if (ec) {
      std::error_code back;
      fs::rename(old, target_, back);
      fail(target_.string(), ": cannot move the new output into place: ", ec.message());
    }
    committed_ = true;
    fs::remove_all(old_pattern, ec);
    return;
  }
  fs::rename(staging_, target_, ec);
  if (ec) fail(target_.string(), ": cannot move the output into place: ", ec.message());
  committed_ = true;
}

void check_output_target(const fs::path& target, bool force) {
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(target, ec);
  if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
    fail(target.string(), ": cannot check the output path: ", ec.message());
  if (fs::exists(status) && !force)
    fail(target.string(), ": already exists; use --force to replace it");
}

void check_force_target(const fs::path& target, bool force_any,
                        const std::function<bool(const fs::path&)>& written_by_expo,
                        const std::string& what, const std::string& force_any_flag) {
  if (force_any) return;
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(target, ec);
  if (!fs::exists(status)) return;
  const fs::path path = canonical_or_absolute(target);
  const fs::path cwd = canonical_or_absolute(fs::current_path(ec));
  const char* home_env = std::getenv("HOME");
  const fs::path home = home_env && *home_env ? canonical_or_absolute(home_env) : fs::path();
  const std::string anyway = "; add " + force_any_flag + " to replace it anyway";
  if (path == path.root_path())
    usage_fail(target.string(), ": --force would replace the root folder", anyway);
  if (is_same_or_ancestor(path, cwd))
    usage_fail(target.string(),
               ": --force would replace the current folder (or a folder that holds it); choose "
               "a new output folder",
               anyway);
  if (!home.empty() && path == home)
    usage_fail(target.string(), ": --force would replace the home folder", anyway);
  if (!fs::is_directory(status))
    usage_fail(target.string(), ": exists and is not a folder; --force replaces only ", what,
               anyway);
  if (fs::is_empty(target, ec) && !ec) return;
  if (!written_by_expo(target))
    usage_fail(target.string(), ": --force replaces only ", what, ", and this folder (",
               some_entries(target), ") does not look like one; choose another folder", anyway);
}

std::vector<LeftoverTemp> clean_leftover_temps(const fs::path& dir) {
  static const std::regex kName(R"(^\..+\.expo-(tmp|old)-[A-Za-z0-9]{6}$)");
  std::vector<LeftoverTemp> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path path = it->path();
    const std::string name = path.filename().string();
    std::smatch match;
    if (!std::regex_match(name, match, kName)) continue;
    std::error_code type_ec;
    if (!it->is_directory(type_ec) || it->is_symlink(type_ec)) continue;  // atomic_write's files
    const bool old = match[1] == "old";
    LeftoverTemp leftover;
    leftover.path = path;
    const std::optional<Owner> owner = read_owner(path);
    if (!owner) {
      leftover.bytes = folder_bytes(path);
      leftover.action = LeftoverTemp::Action::kReported;
      leftover.detail =
          "it has no owner file (an older expo wrote it, or a run was killed as it started)";
      found.push_back(leftover);
      continue;
    }
    if (owner_state(*owner) != OwnerState::kGone) continue;  // running, or another machine's
    leftover.bytes = folder_bytes(path);
    leftover.detail = str("expo process ", owner->pid, " made it and is no longer running");
    std::error_code rm;
    if (old) {
      // The previous output, moved aside by a replacement that stopped before putting the new
      // one in place: when the output's name is free, it goes back there.
      const fs::path target = dir / owner->target;
      const bool target_name_ok = !owner->target.empty() &&
                                  owner->target.find('/') == std::string::npos &&
                                  owner->target != "." && owner->target != "..";
      if (target_name_ok && !fs::exists(fs::symlink_status(target, rm)) &&
          fs::exists(path / "old", rm)) {
        fs::rename(path / "old", target, rm);
        if (!rm) {
          leftover.action = LeftoverTemp::Action::kRestored;
          leftover.detail = str("moved back to ", target.string(), ": ", leftover.detail,
                                " (it stopped while replacing that output)");
          leftover.bytes = 0;
          fs::remove_all(path, rm);
          found.push_back(leftover);
          continue;
        }
      }
    }
    fs::remove_all(path, rm);
    if (rm) {
      leftover.action = LeftoverTemp::Action::kReported;
      leftover.detail += str("; it could not be removed: ", rm.message());
    } else {
      leftover.action = LeftoverTemp::Action::kRemoved;
    }
    found.push_back(leftover);
  }
  return found;
}

std::string describe_leftover(const LeftoverTemp& leftover) {
  switch (leftover.action) {
    case LeftoverTemp::Action::kRemoved:
      return str("removed ", leftover.path.string(), " (", format_bytes(leftover.bytes),
                 "), an unfinished output: ", leftover.detail);
    case LeftoverTemp::Action::kRestored:
      return str(leftover.path.string(), "/old ", leftover.detail);
    case LeftoverTemp::Action::kReported:
      break;
  }
  return str(leftover.path.string(), " (", format_bytes(leftover.bytes),
             ") looks like an unfinished output of an expo run that stopped, left in place: ",
             leftover.detail, "; remove it if no expo is writing there");
}

}  // namespace expo
