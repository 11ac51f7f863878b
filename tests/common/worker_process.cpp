#include "common/worker_process.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/fixtures.h"

extern char** environ;

namespace blip::test {

using Clock = std::chrono::steady_clock;

int unused_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (fd < 0) return 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return 0;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

Child spawn_worker(const std::string& filter, const std::map<std::string, std::string>& vars) {
  static const char* const kLauncherPrefixes[] = {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=",
                                                  "MASTER_ADDR=", "MASTER_PORT=", "SLURM_",
                                                  "TORCHELASTIC_", "BLIP_DIST_"};
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    bool launcher = false;
    for (const char* p : kLauncherPrefixes) launcher = launcher || entry.rfind(p, 0) == 0;
    if (!launcher) env_strings.push_back(entry);
  }
  env_strings.push_back(std::string(kWorkerFlag) + "=1");
  for (const auto& [k, v] : vars) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  Child child;
  child.log = blip::test::temp_dir() + "/worker.log";
  std::string exe = "/proc/self/exe";
  std::string filter_arg = "--gtest_filter=" + filter;
  char* argv[] = {exe.data(), filter_arg.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, child.log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  const int rc = posix_spawn(&child.pid, exe.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) ADD_FAILURE() << "posix_spawn failed: " << rc;
  return child;
}

std::string read_log(const Child& c) {
  std::ifstream in(c.log);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Waits for the children until `deadline_s`; kills any still running. True when all exited 0
// and each log shows its one test passed (a skipped worker does not count).
bool wait_all(std::vector<Child>& children, double deadline_s) {
  const auto start = Clock::now();
  std::vector<int> status(children.size(), -1);
  std::vector<bool> done(children.size(), false);
  std::size_t remaining = children.size();
  while (remaining > 0) {
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (done[i]) continue;
      int st = 0;
      if (::waitpid(children[i].pid, &st, WNOHANG) == children[i].pid) {
        done[i] = true;
        status[i] = st;
        --remaining;
      }
    }
    if (remaining == 0) break;
    if (std::chrono::duration<double>(Clock::now() - start).count() > deadline_s) {
      for (std::size_t i = 0; i < children.size(); ++i)
        if (!done[i]) {
          ::kill(children[i].pid, SIGKILL);
          ::waitpid(children[i].pid, nullptr, 0);
          ADD_FAILURE() << "worker " << i << " still running after " << deadline_s
                        << " s (hang); log:\n" << read_log(children[i]);
        }
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  bool ok = true;
  for (std::size_t i = 0; i < children.size(); ++i) {
    const std::string log = read_log(children[i]);
    const bool passed = WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0 &&
                        log.find("[  PASSED  ] 1 test") != std::string::npos &&
                        log.find("[  SKIPPED ]") == std::string::npos;
    if (!passed) {
      ok = false;
      ADD_FAILURE() << "worker " << i << " failed (status " << status[i] << "); log:\n" << log;
    } else {
      std::printf("--- worker %zu log (excerpt) ---\n", i);
      std::istringstream lines(log);
      for (std::string line; std::getline(lines, line);)
        if (line.rfind("  [rank", 0) == 0) std::printf("%s\n", line.c_str());
    }
  }
  return ok;
}

std::map<std::string, std::string> rank_env(int rank, int world, int port, const std::string& role,
                                            int timeout_ms) {
  return {{"RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_RANK", std::to_string(rank)},
          {"MASTER_ADDR", "127.0.0.1"},
          {"MASTER_PORT", std::to_string(port)},
          {kRoleVar, role},
          {kTimeoutVar, std::to_string(timeout_ms)}};
}

bool is_worker() { return std::getenv(kWorkerFlag) != nullptr; }
std::string worker_role() { return std::getenv(kRoleVar) ? std::getenv(kRoleVar) : ""; }
std::chrono::milliseconds worker_timeout() {
  const char* v = std::getenv(kTimeoutVar);
  return std::chrono::milliseconds(v ? std::atoi(v) : 30000);
}

}  // namespace blip::test
