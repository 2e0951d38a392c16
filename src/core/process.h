#pragma once
// Child processes, the one launcher in expo: the model servers `expo search --serve` starts
// (through /bin/sh, in their own process group, output to a log) and the report's SVG-to-PNG
// converter (quietly, waited for). stdin is /dev/null; SIGINT, SIGTERM and SIGPIPE are reset to
// their defaults in the child.
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace expo {

struct ProcessOptions {
  std::filesystem::path output;  // stdout and stderr are appended here; empty: /dev/null
  bool own_group = false;        // a process group of its own, so stop() reaches its children
};

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the arguments argv. Throws expo::Error when it cannot start.
  ChildProcess(const std::vector<std::string>& argv, const ProcessOptions& options);
  ~ChildProcess();  // stop()
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Whether the process is still running (reaps it when it has exited).
  bool running();
  // Waits for the exit; returns the exit status, or -1 when a signal ended it.
  int wait();
  // SIGTERM (to the group with own_group), up to `grace_s` for it to exit, then SIGKILL.
  // Idempotent.
  void stop(double grace_s = 20);
  // "exit status 1", "killed by signal 9" once the process has exited.
  std::string exit_description() const;
  pid_t pid() const { return pid_; }

 private:
  void record_exit(int status);
  pid_t pid_ = -1;
  bool own_group_ = false;
  bool exited_ = false;
  int status_ = 0;
};

// The first executable `name` in a folder of $PATH.
std::optional<std::filesystem::path> find_on_path(const std::string& name);

// Runs argv with its output discarded and waits; returns the exit status (-1: it could not
// start or a signal ended it). Never throws for a command that fails.
int run_quietly(const std::vector<std::string>& argv);

}  // namespace expo
