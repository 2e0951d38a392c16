#include "core/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace expo {

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const ProcessOptions& options)
    : own_group_(options.own_group) {
  if (argv.empty()) fail("internal: a child process needs a command");
  std::vector<char*> args;  // built before fork: the child only calls async-signal-safe code
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int out = options.output.empty() ? ::open("/dev/null", O_WRONLY | O_CLOEXEC)
                                         : ::open(options.output.c_str(),
                                                  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0)
    fail(options.output.empty() ? std::string("/dev/null") : options.output.string(),
         ": cannot open for the output of ", argv[0], ": ", std::strerror(errno));
  const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(out);
    if (in >= 0) ::close(in);
    fail("cannot start ", argv[0], " (fork: ", std::strerror(e), ")");
  }
  if (pid == 0) {
    if (own_group_) ::setpgid(0, 0);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    if (in >= 0) ::dup2(in, STDIN_FILENO);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(args[0], args.data());
    _exit(127);
  }
  if (own_group_) ::setpgid(pid, pid);  // also from the parent, so the group exists before any kill
  ::close(out);
  if (in >= 0) ::close(in);
  pid_ = pid;
}

ChildProcess::~ChildProcess() {
  try {
    stop();
  } catch (...) {
  }
}

void ChildProcess::record_exit(int status) {
  exited_ = true;
  status_ = status;
}

bool ChildProcess::running() {
  if (pid_ < 0 || exited_) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    record_exit(status);
    return false;
  }
  return true;
}

int ChildProcess::wait() {
  if (pid_ >= 0 && !exited_) {
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
    }
    record_exit(r == pid_ ? status : 0);
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

void ChildProcess::stop(double grace_s) {
  if (pid_ < 0 || !running()) return;
  const pid_t target = own_group_ ? -pid_ : pid_;
  ::kill(target, SIGTERM);
  const auto start = std::chrono::steady_clock::now();
  while (running()) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > grace_s) {
      ::kill(target, SIGKILL);
      wait();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Children a shell left behind in the group.
  if (own_group_) ::kill(-pid_, SIGKILL);
}

std::string ChildProcess::exit_description() const {
  if (!exited_) return "running";
  if (WIFEXITED(status_)) return "exit status " + std::to_string(WEXITSTATUS(status_));
  if (WIFSIGNALED(status_)) return "killed by signal " + std::to_string(WTERMSIG(status_));
  return "stopped";
}

std::optional<std::filesystem::path> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return std::nullopt;
  std::string_view rest = path;
  while (true) {
    const size_t colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    if (!dir.empty()) {
      const std::filesystem::path candidate = std::filesystem::path(dir) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

int run_quietly(const std::vector<std::string>& argv) {
  try {
    ChildProcess child(argv, ProcessOptions{});
    return child.wait();
  } catch (const Error&) {
    return -1;
  }
}

}  // namespace expo
