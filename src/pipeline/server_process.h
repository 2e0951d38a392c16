#pragma once
// A model server started by expo for one candidate (`expo search --serve 'vllm serve {model}
// --port {port}'`): the command runs through /bin/sh in its own process group, its output
// going to a log file; expo waits until it answers GET /health or GET /v1/models with 200,
// and stops the whole group (SIGTERM, then SIGKILL after a grace period) when done. The
// process itself is a core/process ChildProcess.
#include <filesystem>
#include <map>
#include <string>

#include "core/process.h"

namespace expo {

// Replaces {name} placeholders: every {...} in `command` must be a key of `values` (an unknown
// one is an error, naming `option`, that lists the known ones); "{{" and "}}" stand for literal
// braces.
std::string expand_command_template(const std::string& command,
                                    const std::map<std::string, std::string>& values,
                                    const std::string& option = "--serve");

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and released).
int free_loopback_port();

class ServerProcess {
 public:
  // Starts the command; its stdout and stderr are appended to `log_path`.
  ServerProcess(const std::string& command, const std::filesystem::path& log_path);

  // Polls base_url's /health and /v1/models every 0.25 s until one answers 200. Errors: the
  // process exited first (its status and the end of its log quoted), `timeout_s` passed, or
  // Ctrl-C.
  void wait_ready(const std::string& base_url, double timeout_s);
  // Whether the process is still running (reaps it when it has exited).
  bool running() { return process_.running(); }
  // SIGTERM to the group, up to `grace_s` for it to exit, then SIGKILL. Idempotent.
  void stop(double grace_s = 20) { process_.stop(grace_s); }
  // "exit status 1", "killed by signal 9" once the process has exited.
  std::string exit_description() const { return process_.exit_description(); }
  // The last `max_bytes` of the log.
  std::string log_tail(size_t max_bytes = 2000) const;
  pid_t pid() const { return process_.pid(); }

 private:
  std::string command_;
  std::filesystem::path log_path_;
  ChildProcess process_;
};

}  // namespace expo
