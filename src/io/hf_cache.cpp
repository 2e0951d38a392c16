#include "io/hf_cache.h"

#include <cstdlib>
#include <regex>
#include <vector>

#include "core/error.h"
#include "core/fs.h"

namespace expo {

namespace {
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

fs::path hf_cache_root() {
  if (auto v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HUGGINGFACE_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HF_HOME"); !v.empty()) return fs::path(v) / "hub";
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "huggingface" / "hub";
  return fs::path(env("HOME")) / ".cache" / "huggingface" / "hub";
}

bool looks_like_repo_id(const std::string& text) {
  static const std::regex pattern(R"(^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$)");
  return std::regex_match(text, pattern);
}

void check_revision(const std::string& revision) {
  const auto refuse = [&](const char* why) {
    usage_fail("--revision '", revision, "': ", why,
               "; a revision is a branch, a tag or a commit hash, never a path");
  };
  if (revision.empty()) refuse("is empty");
  if (revision.size() > 255) refuse("is longer than 255 characters");
  if (revision.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 "._-/") != std::string::npos)
    refuse("has a character other than letters, digits, '.', '_', '-' and '/'");
  if (revision.front() == '/' || revision.back() == '/') refuse("starts or ends with '/'");
  size_t start = 0;
  for (;;) {
    const size_t slash = revision.find('/', start);
    const std::string part = revision.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") refuse("has an empty, '.' or '..' part");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

fs::path resolve_hf_snapshot(const std::string& repo_id, const std::string& revision) {
  const fs::path root = hf_cache_root();
  const auto slash = repo_id.find('/');
  const fs::path repo_dir =
      root / ("models--" + repo_id.substr(0, slash) + "--" + repo_id.substr(slash + 1));
  const fs::path snapshots = repo_dir / "snapshots";
  std::error_code ec;
  if (!fs::is_directory(snapshots, ec))
    fail("'", repo_id,
         "' is neither a local path nor a model in the Hugging Face cache (looked in ",
         repo_dir.string(), "; set HF_HUB_CACHE or HF_HOME if your cache is elsewhere)");

  std::vector<fs::directory_entry> entries;
  for (const auto& e : fs::directory_iterator(snapshots, ec))
    if (e.is_directory()) entries.push_back(e);
  if (entries.empty()) fail(snapshots.string(), ": no snapshots of '", repo_id, "' in the cache");

  if (!revision.empty()) {
    check_revision(revision);
    if (fs::is_directory(snapshots / revision)) return snapshots / revision;
    const fs::path ref = repo_dir / "refs" / revision;
    if (fs::is_regular_file(ref)) {
      const std::string commit = trim(read_text_file(ref));
      if (commit.empty() || commit.size() > 64 ||
          commit.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        fail(ref.string(), ": does not hold a commit hash (found '", commit.substr(0, 80),
             "'); the cache is damaged: fetch the model again");
      if (fs::is_directory(snapshots / commit)) return snapshots / commit;
      fail(ref.string(), ": points to commit ", commit, ", which is not in ", snapshots.string());
    }
    std::vector<fs::path> matches;
    for (const auto& e : entries)
      if (e.path().filename().string().rfind(revision, 0) == 0) matches.push_back(e.path());
    if (matches.size() == 1) return matches[0];
    std::string known;
    for (const auto& e : entries) known += " " + e.path().filename().string();
    fail("revision '", revision, "' of '", repo_id, "' is not in the cache (snapshots:", known,
         ")");
  }

  const fs::directory_entry* newest = &entries[0];
  for (const auto& e : entries)
    if (fs::last_write_time(e.path(), ec) > fs::last_write_time(newest->path(), ec)) newest = &e;
  return newest->path();
}

}  // namespace expo
