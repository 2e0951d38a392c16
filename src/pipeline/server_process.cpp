#include "pipeline/server_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/interrupt.h"
#include "http/openai_client.h"

namespace expo {

std::string expand_command_template(const std::string& command,
                                    const std::map<std::string, std::string>& values,
                                    const std::string& option) {
  std::string out;
  for (size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if ((c == '{' || c == '}') && i + 1 < command.size() && command[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c == '}')
      fail(option, ": unmatched '}' at offset ", i, " of \"", command, "\" (write }} for a brace)");
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t end = command.find('}', i);
    if (end == std::string::npos)
      fail(option, ": unmatched '{' at offset ", i, " of \"", command, "\" (write {{ for a brace)");
    const std::string key = command.substr(i + 1, end - i - 1);
    const auto it = values.find(key);
    if (it == values.end()) {
      std::string known;
      for (const auto& [k, v] : values) known += (known.empty() ? "{" : ", {") + k + "}";
      fail(option, ": unknown placeholder {", key, "} in \"", command, "\"; known: ", known);
    }
    out += it->second;
    i = end;
  }
  return out;
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("cannot create a socket: ", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int e = errno;
    ::close(fd);
    fail("cannot find a free port on 127.0.0.1: ", std::strerror(e));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

ServerProcess::ServerProcess(const std::string& command, const std::filesystem::path& log_path)
    : command_(command),
      log_path_(log_path),
      process_({"/bin/sh", "-c", command}, ProcessOptions{log_path, /*own_group=*/true}) {}

std::string ServerProcess::log_tail(size_t max_bytes) const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  return text;
}

void ServerProcess::wait_ready(const std::string& base_url, double timeout_s) {
  ClientOptions options;
  options.max_retries = 0;
  options.timeout_s = 5;
  options.connect_timeout_s = 2;
  OpenAIClient client({Endpoint{base_url, ""}}, options);
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    if (!running())
      fail("the server command exited before it answered (", exit_description(), "): ", command_,
           "\n--- end of ", log_path_.string(), " ---\n", log_tail());
    if (client.healthy()) return;
    try {
      client.models();
      return;
    } catch (const Error&) {
    }
    if (interrupted()) fail("interrupted while waiting for the server to start");
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > timeout_s)
      fail("the server did not answer GET ", base_url, "/health or /v1/models within ", timeout_s,
           " s (--serve-timeout): ", command_, "\n--- end of ", log_path_.string(), " ---\n",
           log_tail());
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

}  // namespace expo
