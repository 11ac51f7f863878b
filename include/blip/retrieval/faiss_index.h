// Approximate nearest-neighbour search over ITC embeddings through FAISS, for collections too
// large to scan exactly per query. Optional: a libblip built without FAISS (BLIP_WITH_FAISS=OFF or
// libfaiss-dev missing) says so through faiss_available(), and every FaissIndex call then throws.
// FAISS's headers stay out of this one (the index lives behind a pointer), so applications need
// them neither to build nor to know whether FAISS is in.
//
// Default index "IVF1024,Flat" with nprobe 32, chosen by measurement (bench/search_scale.cpp:
// synthetic clustered 256-d unit vectors, 1000 queries, 2 shared cores, Debian's FAISS 1.7.3,
// OpenBLAS SkylakeX; q/s in batches of 100 / one at a time; runs differ by up to 2x in noise):
//   rows  index          build s  nprobe  recall@10  q/s x100  q/s x1   (exact: q/s x100, x1)
//   1M    IVF1024,Flat      18.9      32     0.951      247     128      95,  4.8
//   1M    IVF1024,Flat               16     0.935      475     233
//   1M    IVF2048,Flat     117.6      64     0.955      101      66      72,  7.0 (busier run)
//   200k  IVF512,Flat        5.5      16     0.918      610     647     465, 24
//   200k  IVF1024,Flat      12.7      32     0.930      573     455     436, 23
//   200k  IVF2048,Flat      27.5      64     0.924      585     472     355, 20
//   50k   HNSW32,Flat       28.6   ef 64     0.985      845     108     895, 44 (easier data)
// Recall follows the fraction of lists scanned (~3% gives ~0.93-0.95 here) whatever nlist is, so
// a larger nlist only costs build time (k-means: ~nlist^2 until FAISS's 256 rows/list sample
// reaches N): IVF2048 took 6x IVF1024's build at 1M for the same recall and speed. HNSW32 would
// take >10 min to build 1M rows on 2 cores (28.6 s at 50k). Debian's libfaiss is built without
// SIMD (fvec_inner_product is its scalar reference loop, <= 1 GMAC/s per core), so scanning lists
// is slow next to OpenBLAS's GEMM: IVF wins ~2.5x over exact search on batches of queries but
// ~25x on single queries (exact search then streams all 1 GB of embeddings per query). A saved
// 1M index (985 MiB, all vectors kept) loads in ~1 s.
//
// Collections smaller than FaissIndexOptions::min_rows_per_list x nlist (39,936 images at the
// default) cannot train the IVF's k-means well; they get an exact "Flat" index instead, searched
// by exact_top_k, so its results are exactly those of exact search.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blip/retrieval/exact_search.h"

namespace blip::retrieval {

// Whether this build of libblip has FAISS. When false, FaissIndex::build/load throw blip::Error.
bool faiss_available();

struct FaissIndexOptions {
  // A FAISS index_factory description, built with the inner-product metric (BLIP's features are
  // L2-normalized, so inner product is cosine similarity).
  std::string description = "IVF1024,Flat";
  // Inverted lists an IVF index scans per query (more: better recall, slower). Clamped to nlist.
  int nprobe = 32;
  // HNSW's search beam width (efSearch), for "HNSW..." descriptions.
  int ef_search = 64;
  // OpenMP threads FAISS uses during build and search; 0 keeps the process's OpenMP setting
  // (which at::set_num_threads also sets).
  int threads = 0;
  // An IVF index needs at least this many training rows per list (FAISS warns below 39); with
  // fewer rows, build() makes an exact "Flat" index instead.
  std::int64_t min_rows_per_list = 39;
};

class FaissIndex {
 public:
  // Indexes `embeddings` [N, E] (float32, any device; rows should be L2-normalized), training
  // the index on them when it needs training. Row i of `embeddings` is neighbour index i.
  // Throws blip::Error for an empty or non-float32 matrix, a description FAISS rejects, or a build
  // without FAISS.
  static FaissIndex build(const at::Tensor& embeddings, const FaissIndexOptions& options = {});

  // Reads an index written by save(). It must hold `expected_rows` vectors of width
  // `expected_dim` with the inner-product metric; otherwise (or for a file that is not a FAISS
  // index, or truncated) throws blip::Error naming `path`. options.description is ignored (the
  // file says what it is); nprobe, ef_search and threads apply.
  static FaissIndex load(const std::string& path, std::int64_t expected_rows, std::int64_t expected_dim,
                         const FaissIndexOptions& options = {});

  FaissIndex(FaissIndex&&) noexcept;
  FaissIndex& operator=(FaissIndex&&) noexcept;
  ~FaissIndex();

  // The (up to) k most similar rows for each row of `queries` [Q, E] (float32, any device), in
  // exact_top_k's order (decreasing similarity, then increasing index). An approximate index may
  // find fewer than min(k, size()) for a query; those slots are left out, never padded. Throws
  // blip::Error for a width other than dim(), k < 1 or non-float32 queries. Safe to call from
  // several threads at once.
  std::vector<std::vector<Neighbor>> search(const at::Tensor& queries, std::int64_t k) const;

  // Writes the index in FAISS's own format (faiss::read_index reads it), atomically: a temporary
  // file in the same directory, fsynced, renamed over `path`. Throws blip::Error naming `path`.
  void save(const std::string& path) const;

  std::int64_t size() const;  // indexed rows
  std::int64_t dim() const;   // embedding width
  // What was built, as an index_factory description: "Flat" for the exact fallback, otherwise
  // e.g. "IVF1024,Flat" (as read back from the index, so also right after load()).
  std::string description() const;

 private:
  struct Impl;
  explicit FaissIndex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace blip::retrieval
