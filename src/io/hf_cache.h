#pragma once
// Finding a model in the local Hugging Face cache by repo id, as huggingface_hub lays it out:
// <cache>/models--<org>--<name>/{refs/<branch>, snapshots/<commit>/...}.
#include <filesystem>
#include <optional>
#include <string>

namespace expo {

// The cache root: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
// else ~/.cache/huggingface/hub.
std::filesystem::path hf_cache_root();

// True for "org/name" shapes that could be a repo id.
bool looks_like_repo_id(const std::string& text);

// Refuses (UsageError) a revision that is not a branch, tag or commit name: path separators
// other than a ref's own '/', "." and ".." parts, or characters outside [A-Za-z0-9._-/].
void check_revision(const std::string& revision);

// The snapshot folder of `repo_id`: for `revision` a commit hash (or its prefix) or a ref
// name (branch or tag); without one, the newest snapshot. Throws naming what was looked for.
std::filesystem::path resolve_hf_snapshot(const std::string& repo_id, const std::string& revision);

}  // namespace expo
