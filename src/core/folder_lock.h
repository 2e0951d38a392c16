#pragma once
// One writer per output folder: an exclusive flock() on a lock file inside it, held for the
// life of the object. The kernel drops the lock when the process ends however it ends (kill -9
// included), so a lock is never left stale; the file itself stays, holding the PID of the last
// holder, which a refused second run names.
#include <filesystem>
#include <string>

namespace expo {

class FolderLock {
 public:
  // Locks `lock_file` (created when needed; its folder must exist). When another process holds
  // it: an error naming `folder_label` and that process's PID, saying that `what` ("expo
  // search") is already running there.
  FolderLock(const std::filesystem::path& lock_file, const std::string& folder_label,
             const std::string& what);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace expo
