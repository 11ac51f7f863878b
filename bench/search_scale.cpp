// Image search at collection scale: exact search (exact_top_k, one GEMM per chunk) against a FAISS
// index (FaissIndex) on synthetic ITC-like embeddings: build time, memory, queries/s in batches
// and one at a time, FAISS's recall@10 against exact search, and exact search's GFLOP/s against a
// GEMM measured in the same run (machines are noisy; compare within a run only).
//
// The data are clustered like real embeddings, not uniform noise on the sphere (where every
// neighbour is nearly equidistant and an IVF index looks worse than it is): unit vectors drawn
// from a seeded mixture of Gaussians around random directions, with log-normal cluster sizes and
// per-cluster spreads. Queries are fresh draws from the same mixture.
//
// It fails (exit 1) when its own checks fail: exact search disagreeing with a float64 brute force
// on --check-queries queries, FAISS's recall@10 at the first --nprobe/--ef-search value below
// --min-recall (0.85; the defaults measured 0.95 at 1M rows), or a saved-and-loaded index
// answering differently from the one built. Each --nprobe value is measured on the saved index
// loaded with it, as a search tool would use it. About 80 s at the defaults on 2 cores.
//
//   bench_search_scale [--rows 1000000] [--dim 256] [--queries 1000] [--threads N]
//                      [--index IVF1024,Flat] [--nprobe 32,16,64] [--ef-search 64] [--min-recall 0.85]
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "blas_info.h"
#include "blip/blas_kernels.h"
#include "blip/error.h"
#include "blip/retrieval/exact_search.h"
#include "blip/retrieval/faiss_index.h"
#include "gemm_reference.h"

namespace fs = std::filesystem;
using blip::retrieval::FaissIndex;
using blip::retrieval::FaissIndexOptions;
using blip::retrieval::Neighbor;
using Results = std::vector<std::vector<Neighbor>>;

namespace {

constexpr int64_t kK = 10;              // recall@10
constexpr int64_t kBatch = 100;         // queries per batched search call
constexpr double kCheckTolerance = 1e-5;  // float32 vs float64 inner products of unit vectors

// The synthetic embeddings: `n` unit rows of a two-level mixture. Topics are random directions;
// each topic has sub-clusters (cosine ~0.82 to their topic, so siblings overlap, like groups of
// similar photos within a theme) and rows scatter widely around their sub-cluster (cosine
// 0.37-0.55). Topic sizes are log-normal. The spreads are wide on purpose: with independent,
// tight clusters (random centres are nearly orthogonal in 256-d) every cluster fits one IVF list
// and recall@10 was ~1.0 at any nprobe, which would flatter FAISS; here it needs a few % of lists.
struct Mixture {
  int64_t topics = 200, subclusters = 50;
  double sub_spread = 0.7;  // noise norm around the topic: cosine 1/sqrt(1 + s^2) ~ 0.82
  double row_spread_lo = 1.5, row_spread_hi = 2.5;  // per sub-cluster, noise norm around its centre
};

struct Args {
  int64_t rows = 1000000, dim = 256, queries = 1000;
  Mixture mixture;
  int64_t exact_single = 20, faiss_single = 500, check_queries = 5;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string index = FaissIndexOptions{}.description;
  std::vector<int> nprobe{FaissIndexOptions{}.nprobe};
  std::vector<int> ef_search{FaissIndexOptions{}.ef_search};
  double min_recall = 0.85;
  uint64_t seed = 1;
  std::string work_dir;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// VmRSS or VmHWM (peak) of this process, in bytes.
int64_t proc_status_bytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size())) * 1024;
  return -1;
}
int64_t rss() { return proc_status_bytes("VmRSS"); }
// Restarts VmHWM from the current RSS (Linux >= 4.0), so that the next peak is this stage's own.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }
int64_t peak_rss() { return proc_status_bytes("VmHWM"); }

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

at::Tensor unit_rows(const at::Tensor& x) { return x / x.norm(2, 1, true); }

// Gaussian noise of expected norm `scale` per row (scale: [rows] or a number).
at::Tensor noise(int64_t rows, int64_t dim, const at::Tensor& scale, at::Generator& gen) {
  return at::randn({rows, dim}, gen).mul_((scale / std::sqrt(static_cast<double>(dim))).reshape({-1, 1}));
}

at::Tensor mixture_rows(int64_t n, int64_t dim, const Mixture& m, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor topics = unit_rows(at::randn({m.topics, dim}, gen));
  const int64_t subs = m.topics * m.subclusters;
  const at::Tensor sub_topic = at::arange(m.topics).repeat_interleave(m.subclusters);
  const at::Tensor sub_centres = unit_rows(topics.index_select(0, sub_topic) +
                                           noise(subs, dim, at::full({subs}, m.sub_spread), gen));
  const at::Tensor spread = m.row_spread_lo + (m.row_spread_hi - m.row_spread_lo) * at::rand({subs}, gen);
  const at::Tensor topic_weight = at::exp(at::randn({m.topics}, gen));  // log-normal topic sizes
  const at::Tensor which = at::multinomial(topic_weight.repeat_interleave(m.subclusters), n, true, gen);
  at::Tensor x = noise(n, dim, spread.index_select(0, which), gen);
  x.add_(sub_centres.index_select(0, which));
  return x.div_(x.norm(2, 1, true));
}

Results search_batched(const std::function<Results(const at::Tensor&)>& search, const at::Tensor& queries) {
  Results all;
  for (int64_t b = 0; b < queries.size(0); b += kBatch) {
    auto part = search(queries.slice(0, b, std::min(queries.size(0), b + kBatch)));
    for (auto& r : part) all.push_back(std::move(r));
  }
  return all;
}

double recall_at_k(const Results& approx, const Results& exact) {
  double sum = 0;
  for (size_t q = 0; q < exact.size(); ++q) {
    std::set<int64_t> truth;
    for (const auto& n : exact[q]) truth.insert(n.index);
    int64_t hit = 0;
    for (const auto& n : approx[q]) hit += static_cast<int64_t>(truth.count(n.index));
    sum += static_cast<double>(hit) / static_cast<double>(truth.size());
  }
  return sum / static_cast<double>(exact.size());
}

bool identical(const Results& a, const Results& b) {
  if (a.size() != b.size()) return false;
  for (size_t q = 0; q < a.size(); ++q) {
    if (a[q].size() != b[q].size()) return false;
    for (size_t j = 0; j < a[q].size(); ++j)
      if (a[q][j].index != b[q][j].index || a[q][j].similarity != b[q][j].similarity) return false;
  }
  return true;
}

// Exact search against a float64 brute force: every returned similarity equals the float64 inner
// product of the row it names, the order is non-increasing, and the k-th similarity is the
// float64 k-th largest (so nothing better was missed) — all within float32 rounding.
bool check_exact_against_float64(const Results& exact, const at::Tensor& queries, const at::Tensor& base,
                                 int64_t count, double* worst) {
  const at::Tensor q64 = queries.slice(0, 0, count).to(at::kDouble);
  std::vector<at::Tensor> parts;
  for (int64_t b = 0; b < base.size(0); b += 65536)
    parts.push_back(at::matmul(q64, base.slice(0, b, std::min(base.size(0), b + 65536)).to(at::kDouble).t()));
  const at::Tensor sims = at::cat(parts, 1);
  const at::Tensor kth = std::get<0>(sims.topk(kK, 1)).select(1, kK - 1);
  bool ok = true;
  *worst = 0;
  for (int64_t i = 0; i < count; ++i) {
    const auto& row = exact[static_cast<size_t>(i)];
    if (static_cast<int64_t>(row.size()) != kK) return false;
    for (size_t j = 0; j < row.size(); ++j) {
      const double err = std::abs(row[j].similarity - sims[i][row[j].index].item<double>());
      *worst = std::max(*worst, err);
      ok = ok && err <= kCheckTolerance && (j == 0 || row[j].similarity <= row[j - 1].similarity);
    }
    ok = ok && row.back().similarity >= kth[i].item<double>() - kCheckTolerance;
  }
  return ok;
}

// Seconds per call of `search` on single queries 0..count-1.
double seconds_per_single_query(const std::function<Results(const at::Tensor&)>& search, const at::Tensor& queries,
                                int64_t count) {
  count = std::min(count, queries.size(0));
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < count; ++i) search(queries.slice(0, i, i + 1));
  return seconds_since(t0) / static_cast<double>(count);
}

// One table row; build_s < 0 and bytes/recall left out print as "-".
void print_row(const std::string& name, double build_s, int64_t bytes, int64_t rss_delta, int64_t peak_delta,
               double batch_qps, double single_qps, std::optional<double> recall) {
  char build[32] = "-", r[32] = "(exact)";
  if (build_s >= 0) std::snprintf(build, sizeof build, "%.1f", build_s);
  if (recall) std::snprintf(r, sizeof r, "%.4f", *recall);
  const bool mem = build_s >= 0 || !recall;
  std::printf("%-24s %9s %12s %11s %11s %12.1f %11.1f %10s\n", name.c_str(), build, mem ? mib(bytes).c_str() : "-",
              mem ? mib(rss_delta).c_str() : "-", mem ? mib(peak_delta).c_str() : "-", batch_qps, single_qps, r);
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);
  Args args;
  CLI::App app{"Exact vs FAISS image search on synthetic clustered embeddings"};
  app.add_option("--rows", args.rows, "indexed embeddings")->check(CLI::PositiveNumber);
  app.add_option("--dim", args.dim, "embedding width")->check(CLI::PositiveNumber);
  app.add_option("--queries", args.queries, "queries (batched in 100s; recall is measured on all)")
      ->check(CLI::Range(int64_t{kBatch}, int64_t{1} << 20));
  app.add_option("--topics", args.mixture.topics, "topics of the synthetic data")->check(CLI::PositiveNumber);
  app.add_option("--subclusters", args.mixture.subclusters, "sub-clusters per topic")->check(CLI::PositiveNumber);
  app.add_option("--exact-single", args.exact_single, "single queries timed for exact search")->check(CLI::PositiveNumber);
  app.add_option("--faiss-single", args.faiss_single, "single queries timed for FAISS")->check(CLI::PositiveNumber);
  app.add_option("--check-queries", args.check_queries, "queries checked against float64")->check(CLI::Range(1, 100));
  app.add_option("--threads", args.threads, "torch and FAISS threads (default: all cores)")
      ->check(CLI::PositiveNumber);
  app.add_option("--index", args.index, "FAISS index_factory description");
  app.add_option("--nprobe", args.nprobe, "IVF lists probed (comma list: each is measured)")
      ->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--ef-search", args.ef_search, "HNSW efSearch (comma list)")->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--min-recall", args.min_recall, "fail below this recall@10 (first --nprobe/--ef-search)");
  app.add_option("--seed", args.seed);
  app.add_option("--work-dir", args.work_dir, "where the index is saved (default: a temporary directory)");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(args.threads);

  const auto blas = blip::blas_kernels();
  std::printf("search_scale: %lld x %lld float32 unit vectors, %lld queries, k=%lld\n",
              static_cast<long long>(args.rows), static_cast<long long>(args.dim),
              static_cast<long long>(args.queries), static_cast<long long>(kK));
  std::printf("data: SYNTHETIC clustered unit vectors (seed %llu), not real embeddings: %lld topics x %lld "
              "sub-clusters (Gaussian mixture on the sphere, log-normal topic sizes); queries are fresh draws\n",
              static_cast<unsigned long long>(args.seed), static_cast<long long>(args.mixture.topics),
              static_cast<long long>(args.mixture.subclusters));
  std::printf("threads: %d (torch and FAISS); openblas core: %s (cpu supports: %s)\n", at::get_num_threads(),
              blas.core.empty() ? "(no OpenBLAS)" : blas.core.c_str(),
              blas.cpu_best.empty() ? "(none)" : blas.cpu_best.c_str());

  auto t0 = std::chrono::steady_clock::now();
  const int64_t rss_start = rss();
  const at::Tensor all = mixture_rows(args.rows + args.queries, args.dim, args.mixture, args.seed);
  const at::Tensor base = all.slice(0, 0, args.rows).contiguous(), queries = all.slice(0, args.rows).contiguous();
  const int64_t exact_bytes = base.numel() * static_cast<int64_t>(sizeof(float));
  std::printf("data generated in %.1f s\n", seconds_since(t0));

  const auto gemm = blip::bench::measure_gemm(2048, at::kFloat);
  std::printf("gemm fp32 2048^3: %.1f GFLOP/s\n\n", gemm.gflops);
  std::printf("%-24s %9s %12s %11s %11s %12s %11s %10s\n", "method", "build s", "index", "RSS delta", "peak delta",
              "q/s (x100)", "q/s (x1)", "recall@10");

  // Exact search: the "index" is the embedding matrix itself.
  auto exact_search = [&](const at::Tensor& q) { return blip::retrieval::exact_top_k(q, base, kK); };
  exact_search(queries.slice(0, 0, kBatch));  // warm-up
  reset_peak_rss();
  const int64_t rss_before_exact = rss();
  t0 = std::chrono::steady_clock::now();
  const Results exact = search_batched(exact_search, queries);
  const double exact_batch_s = seconds_since(t0);
  const int64_t exact_peak = peak_rss() - rss_before_exact;
  const double exact_single_s = seconds_per_single_query(exact_search, queries, args.exact_single);
  print_row("exact", -1, exact_bytes, rss_before_exact - rss_start, exact_peak,
            static_cast<double>(args.queries) / exact_batch_s, 1 / exact_single_s, std::nullopt);

  bool ok = true;
  std::vector<std::string> notes;
  double worst = 0;
  if (!check_exact_against_float64(exact, queries, base, args.check_queries, &worst)) {
    ok = false;
    notes.push_back("FAILED: exact search disagrees with the float64 brute force");
  }
  const double exact_gflops = 2.0 * static_cast<double>(args.queries * args.rows * args.dim) / exact_batch_s / 1e9;
  char line[256];
  std::snprintf(line, sizeof line, "exact search: %.1f GFLOP/s in batches of %lld = %.0f%% of the GEMM; "
                "float64 check on %lld queries: max |error| %.1e (limit %.0e) %s",
                exact_gflops, static_cast<long long>(kBatch), 100 * exact_gflops / gemm.gflops,
                static_cast<long long>(args.check_queries), worst, kCheckTolerance, ok ? "ok" : "FAILED");
  notes.insert(notes.begin(), line);

  if (!blip::retrieval::faiss_available()) {
    notes.push_back("FAISS: not in this build (libfaiss-dev missing or BLIP_WITH_FAISS=OFF)");
  } else {
    const std::string dir = args.work_dir.empty() ? (fs::temp_directory_path() / ("search_scale_" +
                                                     std::to_string(getpid()))).string() : args.work_dir;
    fs::create_directories(dir);
    const std::string path = dir + "/index.faiss";
    FaissIndexOptions options;
    options.description = args.index;
    options.threads = args.threads;
    options.nprobe = args.nprobe.front();
    options.ef_search = args.ef_search.front();

    reset_peak_rss();
    const int64_t rss_before_build = rss();
    t0 = std::chrono::steady_clock::now();
    std::optional<FaissIndex> built = FaissIndex::build(base, options);
    const double build_s = seconds_since(t0);
    const int64_t build_rss = rss() - rss_before_build, build_peak = peak_rss() - rss_before_build;
    const std::string kind = built->description();
    t0 = std::chrono::steady_clock::now();
    built->save(path);
    const double save_s = seconds_since(t0);
    const int64_t file_bytes = static_cast<int64_t>(fs::file_size(path));
    const Results built_results = search_batched([&](const at::Tensor& q) { return built->search(q, kK); }, queries);
    built.reset();

    // Each search setting: the saved index loaded with it (the way a search tool would).
    const bool ivf = kind.rfind("IVF", 0) == 0, hnsw = kind.rfind("HNSW", 0) == 0;
    const std::vector<int> settings = ivf ? args.nprobe : hnsw ? args.ef_search : std::vector<int>{0};
    double load_s = 0;
    for (size_t s = 0; s < settings.size(); ++s) {
      FaissIndexOptions o = options;
      (ivf ? o.nprobe : o.ef_search) = std::max(1, settings[s]);
      t0 = std::chrono::steady_clock::now();
      const FaissIndex index = FaissIndex::load(path, args.rows, args.dim, o);
      if (s == 0) load_s = seconds_since(t0);
      auto faiss_search = [&](const at::Tensor& q) { return index.search(q, kK); };
      faiss_search(queries.slice(0, 0, kBatch));  // warm-up
      t0 = std::chrono::steady_clock::now();
      const Results approx = search_batched(faiss_search, queries);
      const double batch_s = seconds_since(t0);
      const double single_s = seconds_per_single_query(faiss_search, queries, args.faiss_single);
      const double r = recall_at_k(approx, exact);
      const std::string name = kind + (ivf ? " np" + std::to_string(o.nprobe) : hnsw ? " ef" + std::to_string(o.ef_search) : "");
      print_row(name, s == 0 ? build_s : -1, s == 0 ? file_bytes : 0, s == 0 ? build_rss : 0, s == 0 ? build_peak : 0,
                static_cast<double>(args.queries) / batch_s, 1 / single_s, r);
      if (s == 0) {
        if (!identical(approx, built_results)) {
          ok = false;
          notes.push_back("FAILED: the loaded index answers differently from the one built");
        }
        if (!(r >= args.min_recall)) {
          ok = false;
          notes.push_back("FAILED: recall@10 " + std::to_string(r) + " of " + name + " is below " +
                          std::to_string(args.min_recall));
        }
      }
    }
    std::snprintf(line, sizeof line, "FAISS %s: saved in %.1f s (%s file), loaded in %.1f s; recall@10 limit %.3f "
                  "(first setting)", kind.c_str(), save_s, mib(file_bytes).c_str(), load_s, args.min_recall);
    notes.push_back(line);
    if (args.work_dir.empty()) fs::remove_all(dir);
  }
  std::printf("\n");
  for (const auto& n : notes) std::printf("%s\n", n.c_str());
  if (!ok) {
    std::fprintf(stderr, "bench_search_scale: FAILED (see above)\n");
    return 1;
  }
  return 0;
}
