#include "blip/dist/distributed.h"

#include "blip/error.h"
#include "dist/env_parse.h"

#include <ATen/ATen.h>
#include <torch/version.h>

#if defined(BLIP_WITH_DISTRIBUTED) && defined(USE_C10D_GLOO)
#define BLIP_HAVE_C10D 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(USE_C10D_NCCL)
#define BLIP_HAVE_NCCL 1
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace blip::dist {

// ---------------------------------------------------------------------------------------------
// Launch environment
// ---------------------------------------------------------------------------------------------
namespace {

constexpr const char* kAgentStorePrefix = "/worker/attempt_";
constexpr const char* kStoreNamespace = "blip";
// Store counter every rank increments once it is connected; polled until it reaches world_size.
constexpr const char* kJoinKey = "joined";
constexpr std::chrono::milliseconds kJoinPollInterval{20};
// Fixed-size shape message for all_gather: ndim, dtype, then up to kMaxGatherDims sizes.
constexpr int kMaxGatherDims = 8;

void check_rank(const LaunchInfo& info, const char* rank_var, const char* size_var) {
  if (info.rank >= info.world_size)
    fail(std::string("environment variable ") + rank_var,
         "rank " + std::to_string(info.rank) + " is not below " + size_var + "=" +
             std::to_string(info.world_size));
}

[[maybe_unused]] bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

std::string where(const LaunchInfo& info) {
  return "distributed init (rank " + std::to_string(info.rank) + " of " +
         std::to_string(info.world_size) + ", " + info.launcher + ", master " + info.master_addr +
         ":" + std::to_string(info.master_port) + ")";
}

// GLOO_SOCKET_IFNAME's interfaces: the comma-separated list without empty entries.
[[maybe_unused]] std::vector<std::string> split_ifnames(const std::string& list) {
  std::vector<std::string> names;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    if (comma > start) names.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return names;
}

}  // namespace

namespace detail {

EnvLookup env_or_getenv(const EnvLookup& lookup) {
  if (lookup) return lookup;
  return [](const char* n) -> const char* { return std::getenv(n); };
}

std::string env_or(const EnvLookup& env, const char* name, const std::string& fallback) {
  const char* v = env(name);
  return v && *v ? std::string(v) : fallback;
}

int parse_int_env(const char* name, const char* value, int min_value, int max_value) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < min_value || v > max_value)
    fail(std::string("environment variable ") + name,
         "expected an integer in [" + std::to_string(min_value) + ", " +
             std::to_string(max_value) + "], got '" + value + "'");
  return static_cast<int>(v);
}

}  // namespace detail

using detail::env_or;
using detail::parse_int_env;

std::string store_namespace(const std::string& group_name) {
  if (group_name.empty()) fail("distributed group name", "is empty");
  if (group_name.find('/') != std::string::npos)
    fail("distributed group name '" + group_name + "'", "must not contain '/'");
  // c10d::PrefixStore joins its prefix and each key with '/'.
  return std::string(kStoreNamespace) + "/" + group_name + "/";
}

std::string first_slurm_host(const std::string& nodelist) {
  if (nodelist.empty()) fail("SLURM node list", "is empty");
  std::string host;
  std::size_t i = 0;
  while (i < nodelist.size() && nodelist[i] != ',') {
    if (nodelist[i] != '[') {
      host += nodelist[i++];
      continue;
    }
    // A bracket group "[03-05,07]": its first entry's first value, zero padding kept.
    const std::size_t close = nodelist.find(']', i);
    if (close == std::string::npos) fail("SLURM node list '" + nodelist + "'", "unbalanced '['");
    const std::string group = nodelist.substr(i + 1, close - i - 1);
    const std::size_t stop = group.find_first_of(",-");
    const std::string first = group.substr(0, stop);
    if (first.empty()) fail("SLURM node list '" + nodelist + "'", "empty range in brackets");
    host += first;
    i = close + 1;
  }
  if (host.empty()) fail("SLURM node list '" + nodelist + "'", "no host name before ','");
  return host;
}

LaunchInfo detect_launch(const EnvLookup& lookup) {
  const EnvLookup env = detail::env_or_getenv(lookup);
  LaunchInfo info;
  // Gloo's interface applies to any launcher (torch reads it in ProcessGroupGloo's setup).
  info.gloo_ifname = env_or(env, "GLOO_SOCKET_IFNAME", "");
  const char* rank = env("RANK");
  const char* world = env("WORLD_SIZE");
  if (rank && *rank && world && *world) {
    info.launcher = "torchrun";
    info.world_size = parse_int_env("WORLD_SIZE", world, 1, 1 << 20);
    info.rank = parse_int_env("RANK", rank, 0, 1 << 20);
    check_rank(info, "RANK", "WORLD_SIZE");
    if (const char* lr = env("LOCAL_RANK"); lr && *lr)
      info.local_rank = parse_int_env("LOCAL_RANK", lr, 0, 1 << 20);
    info.master_addr = env_or(env, "MASTER_ADDR", "");
    if (const char* port = env("MASTER_PORT"); port && *port)
      info.master_port = parse_int_env("MASTER_PORT", port, 1, 65535);
    if (info.world_size > 1 && info.master_addr.empty())
      fail("environment variable MASTER_ADDR",
           "not set (RANK and WORLD_SIZE are; torchrun sets all of them)");
    if (env_or(env, "TORCHELASTIC_USE_AGENT_STORE", "") == "True") {
      info.agent_store = true;
      info.store_prefix = kAgentStorePrefix + env_or(env, "TORCHELASTIC_RESTART_COUNT", "0");
    }
    return info;
  }
  if (const char* procid = env("SLURM_PROCID"); procid && *procid) {
    info.launcher = "slurm";
    info.rank = parse_int_env("SLURM_PROCID", procid, 0, 1 << 20);
    const char* ntasks = env("SLURM_NTASKS");
    if (!ntasks || !*ntasks) ntasks = env("SLURM_NPROCS");
    if (!ntasks || !*ntasks)
      fail("environment variable SLURM_NTASKS", "not set (SLURM_PROCID is; start ranks with srun)");
    info.world_size = parse_int_env("SLURM_NTASKS", ntasks, 1, 1 << 20);
    check_rank(info, "SLURM_PROCID", "SLURM_NTASKS");
    if (const char* lr = env("SLURM_LOCALID"); lr && *lr)
      info.local_rank = parse_int_env("SLURM_LOCALID", lr, 0, 1 << 20);
    info.master_addr = env_or(env, "MASTER_ADDR", "");
    if (info.master_addr.empty()) {
      const std::string nodes = env_or(env, "SLURM_JOB_NODELIST", env_or(env, "SLURM_NODELIST", ""));
      if (!nodes.empty()) info.master_addr = first_slurm_host(nodes);
    }
    if (info.master_addr.empty()) info.master_addr = env_or(env, "SLURM_LAUNCH_NODE_IPADDR", "");
    if (info.world_size > 1 && info.master_addr.empty())
      fail("environment variable MASTER_ADDR",
           "not set, and neither SLURM_JOB_NODELIST / SLURM_NODELIST nor "
           "SLURM_LAUNCH_NODE_IPADDR gives a master host");
    if (const char* port = env("MASTER_PORT"); port && *port)
      info.master_port = parse_int_env("MASTER_PORT", port, 1, 65535);
    return info;
  }
  return info;  // not launched by torchrun or SLURM: one process
}

// ---------------------------------------------------------------------------------------------
// Process group
// ---------------------------------------------------------------------------------------------
#if BLIP_HAVE_C10D
#if TORCH_VERSION_MAJOR >= 2
using CollectiveGroup = c10d::Backend;  // ProcessGroupGloo / NCCL derive from Backend in 2.x
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif
#endif

struct DistContext::Impl {
  std::string backend = "none";
  bool on_cuda = false;
  LaunchInfo info;
#if BLIP_HAVE_C10D
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<CollectiveGroup> group;
#endif

  // Runs one collective and waits for it; every c10d/gloo error becomes a blip::Error.
  template <typename Start>
  void run(const std::string& op, Start&& start) const {
#if BLIP_HAVE_C10D
    try {
      auto work = start(*group);
      work->wait();
    } catch (const std::exception& e) {
      fail("distributed " + op + " (rank " + std::to_string(info.rank) + " of " +
               std::to_string(info.world_size) + ", " + backend + ")",
           std::string(e.what()) + " (a peer may have died or be stuck; timeout applies)");
    }
#else
    (void)op;
    (void)start;
#endif
  }

  // The tensor as the backend wants it: contiguous, on CPU for Gloo / on CUDA for NCCL.
  at::Tensor staged(const at::Tensor& t) const {
    return (on_cuda ? t.to(at::kCUDA) : t.to(at::kCPU)).contiguous();
  }
};

bool distributed_available() {
#if BLIP_HAVE_C10D
  return true;
#else
  return false;
#endif
}

bool nccl_available() {
#if BLIP_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

DistContext::DistContext() = default;

std::string DistContext::backend() const { return impl_ ? impl_->backend : "none"; }

DistContext init_distributed(const DistOptions& options) {
  return init_distributed(detect_launch(), options);
}

DistContext init_distributed(const LaunchInfo& info, const DistOptions& options) {
  DistContext ctx;
  ctx.info_ = info;
  const std::string store_ns = store_namespace(options.group_name);  // validated on every path
  if (info.world_size <= 1) return ctx;
  if (options.timeout.count() <= 0)
    fail("distributed timeout", "must be positive, got " + std::to_string(options.timeout.count()) + " ms");
  if (options.backend != "auto" && options.backend != "gloo" && options.backend != "nccl")
    fail("distributed backend '" + options.backend + "'", "expected auto, gloo or nccl");
#if !BLIP_HAVE_C10D
  fail(where(info), "this build has no c10d process groups (configure with BLIP_WITH_DISTRIBUTED=ON "
                    "and libgloo-dev installed), but the launcher asked for " +
                        std::to_string(info.world_size) + " ranks");
#else
  const bool want_nccl =
      options.backend == "nccl" || (options.backend == "auto" && options.use_cuda && nccl_available());
  if (want_nccl && !nccl_available())
    fail(where(info), "backend nccl requested but this libtorch has no NCCL process group");

  auto impl = std::make_shared<DistContext::Impl>();
  impl->info = info;
  impl->backend = want_nccl ? "nccl" : "gloo";
  impl->on_cuda = want_nccl;
  // Each phase reports its own failure, so that the message says what did not happen.
  auto phase_error = [&](const std::string& phase, const std::exception& e) {
    std::string reason = e.what();
    // c10::Error messages carry a C++ backtrace after the first line; keep the first lines.
    if (const auto pos = reason.find("\nException raised from"); pos != std::string::npos)
      reason.resize(pos);
    fail(where(info), phase + ": " + reason + " (timeout " +
                          std::to_string(options.timeout.count()) + " ms)");
  };

  // 0. Gloo's devices first: a wrong interface name fails at once, before any waiting.
  decltype(c10d::ProcessGroupGloo::Options::create()) gloo_opts;
  if (!want_nccl) {
    gloo_opts = c10d::ProcessGroupGloo::Options::create(options.timeout);
    const std::vector<std::string> ifnames = split_ifnames(info.gloo_ifname);
    std::string device = "127.0.0.1";
    try {
      // The interfaces the user named (as torch does); all ranks on this host when the master
      // is loopback; else the interface this host's name resolves to.
      if (!ifnames.empty()) {
        for (const std::string& name : ifnames) {
          device = "GLOO_SOCKET_IFNAME interface '" + name + "'";
          gloo_opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
        }
      } else if (is_loopback(info.master_addr)) {
        gloo_opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        device = "the default interface (this host name's address; set GLOO_SOCKET_IFNAME)";
        gloo_opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
    } catch (const std::exception& e) {
      phase_error("cannot create a Gloo device for " + device, e);
    }
  }

  // 1. Rendezvous store: rank 0 hosts it (unless torchrun's agent does); the others connect,
  //    retrying until the timeout.
  try {
    c10d::TCPStoreOptions store_opts;
    store_opts.port = static_cast<std::uint16_t>(info.master_port);
    store_opts.isServer = info.rank == 0 && !info.agent_store;
    store_opts.numWorkers = static_cast<std::size_t>(info.world_size);
    store_opts.waitWorkers = false;  // joined below, with a message that counts the ranks
    store_opts.timeout = options.timeout;
    store_opts.multiTenant = true;
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::TCPStore>(info.master_addr, store_opts);
    if (info.agent_store) store = c10::make_intrusive<c10d::PrefixStore>(info.store_prefix, store);
    // PrefixStore adds the '/' between its prefix and each key.
    impl->store = c10::make_intrusive<c10d::PrefixStore>(store_ns.substr(0, store_ns.size() - 1), store);
    impl->store->setTimeout(options.timeout);
  } catch (const std::exception& e) {
    phase_error(info.rank == 0 && !info.agent_store ? "cannot host the rendezvous store"
                                                    : "cannot reach the rendezvous store",
                e);
  }

  // 2. Every rank announces itself and waits until all world_size ranks have.
  try {
    const auto start = std::chrono::steady_clock::now();
    std::int64_t joined = impl->store->add(kJoinKey, 1);
    while (joined < info.world_size) {
      if (std::chrono::steady_clock::now() - start > options.timeout)
        fail(where(info), "only " + std::to_string(joined) + " of " +
                              std::to_string(info.world_size) + " ranks joined within " +
                              std::to_string(options.timeout.count()) +
                              " ms (are all ranks started, with the same MASTER_ADDR and "
                              "MASTER_PORT?)");
      std::this_thread::sleep_for(kJoinPollInterval);
      joined = impl->store->add(kJoinKey, 0);
    }
  } catch (const blip::Error&) {
    throw;
  } catch (const std::exception& e) {
    phase_error("lost the rendezvous store while waiting for the other ranks", e);
  }

  // 3. The process group itself (its own connections between every pair of ranks).
  try {
    if (want_nccl) {
#if BLIP_HAVE_NCCL
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(info.local_rank));
      auto nccl_opts = c10d::ProcessGroupNCCL::Options::create();
      nccl_opts->timeout = options.timeout;
      impl->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, info.rank,
                                                                info.world_size, nccl_opts);
#endif
    } else {
      impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, info.rank,
                                                                info.world_size, gloo_opts);
    }
  } catch (const std::exception& e) {
    phase_error("cannot connect the " + impl->backend + " process group", e);
  }
  ctx.impl_ = std::move(impl);
  return ctx;
#endif
}

// ---------------------------------------------------------------------------------------------
// Collectives
// ---------------------------------------------------------------------------------------------
void DistContext::all_reduce_sum(at::Tensor& tensor) const {
  if (!tensor.defined() || !at::isFloatingType(tensor.scalar_type()))
    fail("distributed all_reduce", "expects a defined floating-point tensor");
  if (!impl_) return;
#if BLIP_HAVE_C10D
  std::vector<at::Tensor> buf{impl_->staged(tensor)};
  impl_->run("all_reduce", [&](CollectiveGroup& g) {
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    return g.allreduce(buf, opts);
  });
  tensor.copy_(buf[0]);
#endif
}

at::Tensor DistContext::all_gather(const at::Tensor& tensor,
                                   std::vector<std::int64_t>* rows_per_rank) const {
  if (!tensor.defined() || tensor.dim() < 1)
    fail("distributed all_gather", "expects a defined tensor with at least one dimension");
  if (rows_per_rank) rows_per_rank->assign(1, tensor.size(0));
  if (!impl_) return tensor.clone();
#if !BLIP_HAVE_C10D
  return tensor.clone();
#else
  if (tensor.dim() > kMaxGatherDims)
    fail("distributed all_gather", "at most " + std::to_string(kMaxGatherDims) + " dimensions");
  const int world = world_size();
  // 1. Exchange shapes and dtypes, so that ranks may hold different row counts.
  at::Tensor shape = at::zeros({kMaxGatherDims + 2}, at::kLong);
  shape[0] = tensor.dim();
  shape[1] = static_cast<std::int64_t>(tensor.scalar_type());
  for (int64_t d = 0; d < tensor.dim(); ++d) shape[d + 2] = tensor.size(d);
  std::vector<at::Tensor> shape_in{impl_->staged(shape)};
  std::vector<std::vector<at::Tensor>> shape_out(1);
  for (int r = 0; r < world; ++r) shape_out[0].push_back(at::empty_like(shape_in[0]));
  impl_->run("all_gather (shapes)",
             [&](CollectiveGroup& g) { return g.allgather(shape_out, shape_in); });
  std::vector<at::Tensor> shapes;
  int64_t max_rows = 0;
  for (int r = 0; r < world; ++r) {
    shapes.push_back(shape_out[0][r].to(at::kCPU));
    const at::Tensor& s = shapes.back();
    // Everything but dim 0 must agree with this rank's tensor.
    bool same = s[0].item<int64_t>() == tensor.dim() &&
                s[1].item<int64_t>() == static_cast<int64_t>(tensor.scalar_type());
    for (int64_t d = 1; same && d < tensor.dim(); ++d) same = s[d + 2].item<int64_t>() == tensor.size(d);
    if (!same)
      fail("distributed all_gather (rank " + std::to_string(rank()) + ")",
           "rank " + std::to_string(r) + " holds a tensor of another dtype or trailing shape");
    max_rows = std::max(max_rows, s[2].item<int64_t>());
  }
  // 2. Gather rows padded to the largest count, then drop the padding.
  std::vector<int64_t> padded_sizes = tensor.sizes().vec();
  padded_sizes[0] = max_rows;
  at::Tensor padded = at::zeros(padded_sizes, tensor.options().device(
                                                  impl_->on_cuda ? at::kCUDA : at::kCPU));
  padded.narrow(0, 0, tensor.size(0)).copy_(tensor);
  std::vector<at::Tensor> in{padded};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < world; ++r) out[0].push_back(at::empty_like(padded));
  impl_->run("all_gather", [&](CollectiveGroup& g) { return g.allgather(out, in); });
  std::vector<at::Tensor> parts;
  if (rows_per_rank) rows_per_rank->clear();
  for (int r = 0; r < world; ++r) {
    const int64_t rows = shapes[r][2].item<int64_t>();
    parts.push_back(out[0][r].narrow(0, 0, rows));
    if (rows_per_rank) rows_per_rank->push_back(rows);
  }
  return at::cat(parts, 0).to(tensor.device());
#endif
}

void DistContext::broadcast(at::Tensor& tensor, int root) const {
  if (!tensor.defined()) fail("distributed broadcast", "expects a defined tensor");
  if (root < 0 || root >= world_size())
    fail("distributed broadcast", "root " + std::to_string(root) + " is not a rank of " +
                                      std::to_string(world_size()));
  if (!impl_) return;
#if BLIP_HAVE_C10D
  std::vector<at::Tensor> buf{impl_->staged(tensor)};
  impl_->run("broadcast", [&](CollectiveGroup& g) {
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    return g.broadcast(buf, opts);
  });
  tensor.copy_(buf[0]);
#endif
}

void DistContext::barrier() const {
  if (!impl_) return;
#if BLIP_HAVE_C10D
  impl_->run("barrier", [&](CollectiveGroup& g) { return g.barrier(c10d::BarrierOptions()); });
#endif
}

}  // namespace blip::dist
