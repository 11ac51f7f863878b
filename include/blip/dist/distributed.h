// Multi-process evaluation, as BLIP's utils.init_distributed_mode + torch.distributed do it:
// the launcher's environment says which rank this process is; ranks rendezvous through a
// c10d::TCPStore at MASTER_ADDR:MASTER_PORT (rank 0 hosts it, unless torchrun's agent already
// does) and talk through a c10d process group: Gloo on CPU, NCCL on CUDA where libtorch has it.
//
// Environments understood (first match wins):
//   * torchrun / torch.distributed.launch: RANK, WORLD_SIZE, LOCAL_RANK (default 0),
//     MASTER_ADDR, MASTER_PORT (default 29500). With TORCHELASTIC_USE_AGENT_STORE=True the
//     agent hosts the store and every rank is a client (prefix /worker/attempt_<restart count>),
//     exactly as torch's env:// rendezvous does.
//   * SLURM (srun): SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID. Master: MASTER_ADDR if set, else
//     the first host of SLURM_JOB_NODELIST / SLURM_NODELIST (where task 0 runs with the default
//     block distribution), else SLURM_LAUNCH_NODE_IPADDR. Port: MASTER_PORT or 29500.
//   * otherwise: world size 1 and no process group at all.
// A world size of 1 never creates a process group either.
//
// Gloo's network interface: GLOO_SOCKET_IFNAME (read by detect_launch into
// LaunchInfo::gloo_ifname; a comma-separated list gives one device per interface, as torch does)
// wins; else 127.0.0.1 when the master is a loopback address; else the interface this host's
// name resolves to.
//
// Store keys: every group lives under "blip/<group_name>/" of the store (DistOptions::group_name),
// so that several groups on one store (one master address and port) never see each other's keys.
//
// Every failure is a blip::Error that names the master address, the rank and the reason; every
// wait is bounded by DistOptions::timeout (unreachable master, missing or dead peers), so a
// broken launch fails instead of hanging.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace blip::dist {

inline constexpr int kDefaultMasterPort = 29500;
inline constexpr std::chrono::milliseconds kDefaultDistTimeout{30'000};

struct DistOptions {
  // Bound on connecting to the store, waiting for peers, and each collective.
  std::chrono::milliseconds timeout = kDefaultDistTimeout;
  // "auto": NCCL when use_cuda and libtorch has NCCL, else Gloo. "gloo" / "nccl" force one.
  std::string backend = "auto";
  // Collectives operate on CUDA tensors (NCCL) rather than CPU ones.
  bool use_cuda = false;
  // Names this process group's key namespace "blip/<group_name>/" in the rendezvous store, so
  // that groups sharing one store (same master address and port) do not collide. Non-empty,
  // no '/'. Every rank of a group passes the same name.
  std::string group_name = "default";
};

// The key namespace of `group_name` in the rendezvous store: "blip/<group_name>/". Throws
// blip::Error for an empty name or one holding '/'.
std::string store_namespace(const std::string& group_name);

// What the launcher's environment says.
struct LaunchInfo {
  std::string launcher = "none";  // "torchrun", "slurm" or "none"
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;
  int master_port = kDefaultMasterPort;
  bool agent_store = false;  // torchrun's agent hosts the TCPStore
  std::string store_prefix;  // key prefix in an agent store
  std::string gloo_ifname;   // GLOO_SOCKET_IFNAME ("" if unset): Gloo's interface(s), comma-separated
};

// Reads the launch environment through `getenv` (std::getenv by default; tests pass a map),
// GLOO_SOCKET_IFNAME included.
// Inconsistent values (non-numeric, rank outside [0, world_size), missing MASTER_ADDR with
// WORLD_SIZE > 1) throw blip::Error naming the variable.
using EnvLookup = std::function<const char*(const char*)>;
LaunchInfo detect_launch(const EnvLookup& getenv = {});

// The first host of a SLURM node list: "node[03-05,07],gpu1" -> "node03", "a,b" -> "a",
// "rack1-n[1-2]" -> "rack1-n1". Throws blip::Error for an empty or malformed list.
std::string first_slurm_host(const std::string& nodelist);

// This process's place in the evaluation and the collectives BLIP's evaluation uses.
// Copies share one process group. Collectives are no-ops (or copies) when world_size() == 1.
class DistContext {
 public:
  DistContext();  // single process, no process group

  int rank() const { return info_.rank; }
  int world_size() const { return info_.world_size; }
  int local_rank() const { return info_.local_rank; }
  bool is_main() const { return info_.rank == 0; }
  bool distributed() const { return static_cast<bool>(impl_); }
  const LaunchInfo& launch() const { return info_; }
  std::string backend() const;  // "none", "gloo" or "nccl"

  // In-place sum over ranks (BLIP's all_reduce of the score matrices). Float tensors.
  void all_reduce_sum(at::Tensor& tensor) const;
  // Every rank's tensor concatenated along dim 0, in rank order (BLIP's concat_all_gather).
  // Ranks may contribute different dim-0 sizes; the other dims and the dtype must agree.
  // `rows_per_rank`, if given, receives each rank's dim-0 size.
  at::Tensor all_gather(const at::Tensor& tensor,
                        std::vector<std::int64_t>* rows_per_rank = nullptr) const;
  // Overwrites `tensor` with root's (same shape and dtype on every rank).
  void broadcast(at::Tensor& tensor, int root = 0) const;
  // Waits for every rank (bounded by the timeout).
  void barrier() const;

  struct Impl;  // the c10d store and process group (distributed.cpp)

 private:
  friend DistContext init_distributed(const LaunchInfo&, const DistOptions&);
  LaunchInfo info_;
  std::shared_ptr<Impl> impl_;
};

// True when this build has c10d (BLIP_WITH_DISTRIBUTED and a libtorch with Gloo).
bool distributed_available();
// True when this build can use NCCL (a CUDA libtorch with c10d NCCL).
bool nccl_available();

// detect_launch() + init_distributed(info, options).
DistContext init_distributed(const DistOptions& options = {});
// Joins the process group described by `info` (world size 1: returns a single-process context).
DistContext init_distributed(const LaunchInfo& info, const DistOptions& options = {});

}  // namespace blip::dist
