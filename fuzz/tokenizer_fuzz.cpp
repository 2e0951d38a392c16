// libFuzzer target for tokenizer.json loading and encoding. The input is a tokenizer.json,
// optionally followed by a line "#TEXT#" and text to encode and decode again. Loading reads a
// folder, so each input is written to a private temporary folder first.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "core/fs.h"
#include "fuzz_util.h"
#include "text/tokenizer.h"

namespace {

const std::filesystem::path& folder() {
  static const std::filesystem::path path = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "expo-fuzz-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) std::abort();
    return std::filesystem::path(pattern);
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input = expo::fuzz::as_text(data, size);
  static const std::string kSeparator = "\n#TEXT#\n";
  const size_t cut = input.find(kSeparator);
  const std::string json = input.substr(0, cut);
  const std::string text =
      cut == std::string::npos ? "Hello world" : input.substr(cut + kSeparator.size());
  try {
    expo::write_text_file(folder() / "tokenizer.json", json);
    const expo::Tokenizer tokenizer = expo::Tokenizer::load(folder());
    const auto ids = tokenizer.encode(text, /*add_special_tokens=*/true);
    tokenizer.decode(ids, /*skip_special_tokens=*/false);
  } catch (const expo::Error&) {
  }
  return 0;
}
