// Tokenizer throughput: loads a tokenizer folder, encodes a text file split into documents at
// blank lines (one encode() per document, single thread) and prints the load time, MB/s and a
// hash of all ids (bench/bench_tokenizer.sh compares it with tokenizers.js on the same text).
// Usage: bench_tokenizer TOKENIZER_DIR TEXT_FILE
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "text/tokenizer.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR TEXT_FILE\n", argv[0]);
    return 2;
  }
  try {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const expo::Tokenizer tokenizer = expo::Tokenizer::load(argv[1]);
    const double load_s = std::chrono::duration<double>(clock::now() - t0).count();

    const std::string text = expo::read_text_file(argv[2]);
    std::vector<std::string_view> docs;
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find("\n\n", pos);
      end = end == std::string::npos ? text.size() : end + 2;
      docs.push_back(std::string_view(text).substr(pos, end - pos));
      pos = end;
    }
    uint64_t hash = 1469598103934665603ull, tokens = 0;
    const auto t1 = clock::now();
    for (const auto doc : docs) {
      for (const int32_t id : tokenizer.encode(doc, false)) {
        hash = (hash ^ static_cast<uint32_t>(id)) * 1099511628211ull;
        ++tokens;
      }
    }
    const double encode_s = std::chrono::duration<double>(clock::now() - t1).count();
    std::printf(
        "load_s %.3f\nbytes %zu\ndocuments %zu\ntokens %llu\nencode_s %.3f\nMB_per_s %.2f\n"
        "ids_hash %016llx\n",
        load_s, text.size(), docs.size(), static_cast<unsigned long long>(tokens), encode_s,
        text.size() / 1e6 / encode_s, static_cast<unsigned long long>(hash));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
