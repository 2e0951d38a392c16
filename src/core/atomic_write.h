#pragma once
// Whole small files (answers, reports) written atomically: the text goes to a temporary file in
// the same folder, is flushed to disk, and is renamed over the target only when complete, so a
// crash or Ctrl-C leaves either the old file or the new one, never half of one.
#include <filesystem>
#include <string>

namespace expo {

// Creates the parent folder if needed; replaces an existing `path`. Errors name the file.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace expo
