#pragma once
// Files and folders: whole-file reads with errors that name the file, an output file that
// reports a full disk clearly. (Outputs that appear only when complete: core/staging_dir.h.)
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace expo {

namespace fs = std::filesystem;

std::string read_text_file(const fs::path& path);
// The same, refusing a file of more than max_bytes (the error names the file and says how to
// raise the limit: environment variable `env_name`). A regular file's size is checked before
// reading; a stream (a FIFO, /dev/zero) is read only until it passes the limit. With
// `json_text`, a NUL byte (never in JSON or JSONL text) is an error naming its offset.
std::string read_text_file(const fs::path& path, uint64_t max_bytes, std::string_view env_name,
                           bool json_text = false);
void write_text_file(const fs::path& path, const std::string& text);
// Writes all of `text` to the open descriptor `fd` (retrying short writes and EINTR); an error
// names `path` ("write error (disk full?)").
void write_all(int fd, std::string_view text, const fs::path& path);
// Copies the bytes of `from` (following symlinks, as in a Hugging Face cache) to a new `to`.
void copy_file_contents(const fs::path& from, const fs::path& to);

// A file opened for writing; every write is checked and a failure names the file.
//
// In direct mode (for large streamed outputs) the bytes are gathered in an aligned staging
// buffer and written with O_DIRECT, bypassing the page cache: on the virtual machines we
// measured, copying into fresh page-cache pages cost more CPU than computing the model, and
// direct writes let the disk run while the CPUs compute. Full staging buffers are written by
// two background threads, so two requests are in flight and the disk's queue never runs dry.
// Where the file system refuses O_DIRECT, the file silently stays a normal buffered one.
class OutputFile {
 public:
  explicit OutputFile(const fs::path& path, bool direct = false);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  OutputFile(OutputFile&& other) noexcept;
  void write(const void* data, size_t size);
  // Starts (without waiting) the disk write-back of everything written so far, so a final
  // sync finds little left to do and the disk works while we compute. (Direct mode: no-op.)
  void start_writeback();
  void close();
  const fs::path& path() const { return path_; }

 private:
  struct Direct;

  fs::path path_;
  int fd_ = -1;
  uint64_t written_ = 0;  // bytes given to write()
  uint64_t writeback_from_ = 0;
  std::unique_ptr<Direct> direct_;  // direct mode only
};

// The path with symlinks resolved as far as it exists (std::filesystem::weakly_canonical),
// absolute; when that fails (a symlink loop), the absolute path, lexically normalized.
fs::path canonical_or_absolute(const fs::path& p);
// True when `path` is `ancestor` or lies inside it, component by component (both should come
// from canonical_or_absolute; a trailing empty component of `ancestor` is ignored).
bool is_same_or_ancestor(const fs::path& ancestor, const fs::path& path);

// Checks, before any work, that `target` can be created: its nearest existing ancestor is a
// folder in which a file can be made (a real probe: a read-only file system or a folder of
// another user fails it, as does an ancestor that is a file). Throws naming `what` (e.g.
// "--write-best") and the folder.
void check_can_create(const fs::path& target, const std::string& what);

// Flushes every file in `dir`, and the folder itself, to the disk.
void sync_folder(const fs::path& dir);

}  // namespace expo
