// Runs one benchmark mode in a forked child, so that each mode's peak RSS is its own
// (ru_maxrss of the child) and no mode's allocations skew the next.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace blip::bench {

// fn's JSON from the child, with "peak_rss_mib" added; an exception in the child (its message
// comes back) or a child that dies throws std::runtime_error naming `mode`.
inline nlohmann::json run_in_child(const std::string& mode, const std::function<nlohmann::json()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    int code = 0;
    try {
      out = fn().dump();
    } catch (const std::exception& e) {
      out = nlohmann::json{{"error", e.what()}}.dump();
      code = 1;
    }
    if (write(fds[1], out.data(), out.size()) < 0) code = 2;
    close(fds[1]);
    _exit(code);
  }
  close(fds[1]);
  std::string data;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  if (data.empty()) throw std::runtime_error("mode " + mode + ": child died (status " + std::to_string(status) + ")");
  auto j = nlohmann::json::parse(data);
  if (j.contains("error")) throw std::runtime_error("mode " + mode + ": " + j["error"].get<std::string>());
  j["peak_rss_mib"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
  return j;
}

}  // namespace blip::bench
