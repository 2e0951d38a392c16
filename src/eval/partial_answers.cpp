#include "eval/partial_answers.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/fs.h"
#include "core/json_reader.h"

namespace expo {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One answer line read back: checked against the prompt set.
Answer answer_from_line(const json& j, const PromptSet& prompts, const std::string& where,
                        size_t& index) {
  const JsonReader r(where);
  r.expect_object(j, "");
  r.allow_only(j, "", {"index", "id", "turns", "finish_reasons", "output_tokens"});
  index = static_cast<size_t>(
      r.get_int(j, "", "index", 0, static_cast<int64_t>(prompts.prompts.size()) - 1));
  const Prompt& prompt = prompts.prompts[index];
  const std::string id = r.get_string(j, "", "id");
  if (id != prompt.id_text)
    fail(where, ": answers prompt ", id, " at index ", index, ", but the prompt set has prompt ",
         prompt.id_text, " there");
  Answer a;
  a.prompt = prompt;
  for (const auto& t : r.get_array(j, "", "turns")) {
    if (!t.is_string()) fail(where, ": \"turns\" must hold strings");
    a.turns.push_back(t.get<std::string>());
  }
  for (const auto& f : r.get_array(j, "", "finish_reasons")) {
    if (!f.is_string()) fail(where, ": \"finish_reasons\" must hold strings");
    a.finish_reasons.push_back(f.get<std::string>());
  }
  for (const auto& n : r.get_array(j, "", "output_tokens")) {
    if (!n.is_number_unsigned()) fail(where, ": \"output_tokens\" must hold counts");
    a.output_tokens.push_back(n.get<uint64_t>());
  }
  if (a.turns.size() != prompt.turn_count())
    fail(where, ": prompt ", id, " has ", prompt.turn_count(), " turns but the line answers ",
         a.turns.size());
  return a;
}

}  // namespace

fs::path PartialAnswers::path_for(const fs::path& output) {
  return fs::path(output.string() + ".partial.jsonl");
}

PartialAnswers::PartialAnswers(const fs::path& path, const Fingerprint& settings,
                               const PromptSet& prompts, bool resume, bool force)
    : path_(path), loaded_(prompts.prompts.size()) {
  // One writer per output: the file is locked (flock, released when the process ends however
  // it ends) before it is read or changed, so a second `expo generate` to the same --output
  // is refused instead of interleaving its answers with the first one's.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path.string(), ": cannot open for writing: ", std::strerror(errno));
  try {
    open_locked(settings, prompts, resume, force);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

void PartialAnswers::open_locked(const Fingerprint& settings, const PromptSet& prompts, bool resume,
                                 bool force) {
  const fs::path& path = path_;
  int rc;
  do rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno != EWOULDBLOCK) fail(path.string(), ": cannot lock: ", std::strerror(errno));
    fail(path.string(),
         " is in use: another expo generate is writing the same --output now. Wait for it to "
         "finish or stop it, or choose another --output");
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail(path.string(), ": cannot stat: ", std::strerror(errno));
  const bool exists = st.st_size > 0;  // an empty file (just created, or never written): none
  if (exists && !resume && !force)
    fail(path.string(),
         " holds the answers of an interrupted run: pass --resume to finish it (only the "
         "prompts it lacks are generated), or --force to start over and discard them");
  size_t keep = 0;
  bool add_newline = false;
  if (exists && resume) {
    const std::string text = read_text_file(path);
    size_t at = 0, line_number = 0;
    bool have_settings = false;
    while (at < text.size()) {
      const size_t newline = text.find('\n', at);
      const bool complete = newline != std::string::npos;
      const size_t end = complete ? newline : text.size();
      const std::string_view line(text.data() + at, end - at);
      ++line_number;
      const std::string where = str(path.string(), ":", line_number);
      if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
        nlohmann::ordered_json j;
        try {
          j = nlohmann::ordered_json::parse(line);
        } catch (const json::exception& e) {
          if (!complete) {
            warnings_.push_back(str(where,
                                    ": dropped a truncated last line (an interrupted write); "
                                    "that prompt will be generated again"));
            break;
          }
          fail(where, ": malformed JSON: ", json_error_text(e));
        }
        if (!have_settings) {
          if (!j.is_object() || !j.contains("expo_partial_answers") || !j.contains("settings"))
            fail(where,
                 ": not the settings line of expo's partial answers; use --force to "
                 "start over");
          check_same_settings(Fingerprint::from_json(j["settings"], where), settings,
                              str("--resume: ", path.string()),
                              "Run the command that started it to finish it, or pass --force "
                              "(without --resume) to start over with these settings.");
          have_settings = true;
        } else {
          size_t index = 0;
          Answer a = answer_from_line(json::parse(line), prompts, where, index);
          if (loaded_[index]) fail(where, ": prompt ", a.prompt.id_text, " is answered twice");
          loaded_[index] = std::move(a);
        }
        if (!complete) add_newline = true;
      }
      keep = complete ? end + 1 : end;
      at = end + 1;
    }
    if (!have_settings) keep = 0;  // an empty file: start it again
  }

  const bool fresh = keep == 0;
  if (::ftruncate(fd_, static_cast<off_t>(keep)) != 0)
    fail(path.string(), ": cannot truncate: ", std::strerror(errno));
  if (::lseek(fd_, static_cast<off_t>(keep), SEEK_SET) < 0)
    fail(path.string(), ": cannot seek: ", std::strerror(errno));
  if (add_newline) write_all(fd_, "\n", path_);
  if (fresh) {
    nlohmann::ordered_json head;
    head["expo_partial_answers"] = 1;
    head["settings"] = settings.to_json();
    write_all(fd_, dump_json(head) + "\n", path_);
    if (::fsync(fd_) != 0) fail(path_.string(), ": cannot flush to disk: ", std::strerror(errno));
  }
}

PartialAnswers::~PartialAnswers() {
  if (fd_ >= 0) ::close(fd_);
}

size_t PartialAnswers::loaded_count() const {
  size_t n = 0;
  for (const auto& a : loaded_) n += a.has_value();
  return n;
}

void PartialAnswers::append(size_t index, const Answer& answer) {
  nlohmann::ordered_json j;
  j["index"] = index;
  j["id"] = answer.prompt.id_text;
  j["turns"] = answer.turns;
  j["finish_reasons"] = answer.finish_reasons;
  j["output_tokens"] = answer.output_tokens;
  write_all(fd_, dump_json(j) + "\n", path_);
  if (::fdatasync(fd_) != 0) fail(path_.string(), ": cannot flush to disk: ", std::strerror(errno));
}

void PartialAnswers::remove() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  fs::remove(path_, ec);
  if (ec) fail(path_.string(), ": cannot remove it after writing the answers: ", ec.message());
}

}  // namespace expo
