// Spawning ranks for multi-process tests: the test binary re-executes itself (/proc/self/exe)
// with --gtest_filter on one worker test and the launcher's environment (RANK, WORLD_SIZE,
// MASTER_ADDR=127.0.0.1, ...); the parent waits with a hard deadline and kills hung workers.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace blip::test {

// Set in every spawned worker's environment.
inline constexpr const char* kWorkerFlag = "BLIP_DIST_WORKER";
inline constexpr const char* kTimeoutVar = "BLIP_DIST_TIMEOUT_MS";
inline constexpr const char* kRoleVar = "BLIP_DIST_ROLE";

// A port on 127.0.0.1 that nothing listens on right now (bound, read back, closed); 0 on error.
int unused_loopback_port();

struct Child {
  pid_t pid = -1;
  std::string log;
};

// Starts this binary running only the test `filter`, with the parent's launcher variables
// removed and `vars` added; stdout and stderr go to Child::log.
Child spawn_worker(const std::string& filter, const std::map<std::string, std::string>& vars);
std::string read_log(const Child& child);

// Waits for all children until `deadline_s`, killing any still running. True when each exited
// with 0 and its log shows its one test passed (not skipped). Prints the log lines that start
// with "  [rank" of passing workers; adds a gtest failure with the log of failing ones.
bool wait_all(std::vector<Child>& children, double deadline_s);

// The torchrun environment of `rank` of `world` on 127.0.0.1:port, plus role and timeout.
std::map<std::string, std::string> rank_env(int rank, int world, int port, const std::string& role,
                                            int timeout_ms);

bool is_worker();                          // running as a spawned rank
std::string worker_role();                 // kRoleVar, "" if unset
std::chrono::milliseconds worker_timeout();  // kTimeoutVar

}  // namespace blip::test
