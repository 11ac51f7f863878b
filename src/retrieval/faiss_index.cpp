#include "blip/retrieval/faiss_index.h"

#include "blip/error.h"

#ifdef BLIP_WITH_FAISS
#include <ATen/ATen.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <new>

#include "io/file_io.h"
#endif

#include <utility>

namespace blip::retrieval {

namespace {
constexpr const char* kWhat = "FaissIndex";
}  // namespace

#ifdef BLIP_WITH_FAISS

namespace {

// FAISS's label type: Index::idx_t in 1.7.3, faiss::idx_t in later releases.
using Label = decltype(faiss::Index::ntotal);

// FaissException::what() reads "Error in <function> at <file>:<line>: <reason>"; the reason is
// what a user can act on.
std::string faiss_reason(const std::exception& e) {
  const std::string text = e.what();
  const auto at = text.find(" at ");
  const auto colon = at == std::string::npos ? std::string::npos : text.find(": ", at);
  return colon == std::string::npos ? text : text.substr(colon + 2);
}

// FAISS runs its loops on OpenMP; a positive count applies for one call and is then restored
// (omp_set_num_threads changes only the calling thread's setting).
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads) : saved_(omp_get_max_threads()), active_(threads > 0) {
    if (active_) omp_set_num_threads(threads);
  }
  ~ScopedOmpThreads() {
    if (active_) omp_set_num_threads(saved_);
  }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int saved_;
  bool active_;
};

// A float32 [rows, dim] matrix FAISS can read in place (CPU, contiguous).
at::Tensor host_matrix(const at::Tensor& t, const std::string& what) {
  if (!t.defined() || t.dim() != 2) fail(what, "expected a 2-D [rows, dim] matrix");
  if (t.scalar_type() != at::kFloat)
    fail(what, std::string("expected float32, got ") + std::string(c10::toString(t.scalar_type())));
  if (t.size(1) < 1 || t.size(1) > INT_MAX) fail(what, "width " + std::to_string(t.size(1)) + " out of range");
  return t.to(at::kCPU).contiguous();
}

// The index_factory description of an index FAISS built or read back.
std::string describe(const faiss::Index& index) {
  if (dynamic_cast<const faiss::IndexFlat*>(&index)) return "Flat";
  if (const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(&index)) {
    const std::string m = "HNSW" + std::to_string(hnsw->hnsw.nb_neighbors(1));
    if (dynamic_cast<const faiss::IndexHNSWFlat*>(&index)) return m + ",Flat";
    return m + (hnsw->storage ? "," + describe(*hnsw->storage) : std::string());
  }
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(&index)) {
    std::string s = "IVF" + std::to_string(ivf->nlist);
    if (ivf->quantizer && !dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer))
      s += "_" + describe(*ivf->quantizer);
    if (dynamic_cast<const faiss::IndexIVFFlat*>(&index)) return s + ",Flat";
    if (const auto* pq = dynamic_cast<const faiss::IndexIVFPQ*>(&index))
      return s + ",PQ" + std::to_string(pq->pq.M) + "x" + std::to_string(pq->pq.nbits);
    return s + ",?";
  }
  return "?";
}

// Checked before any work, so that a bad setting never costs a build or a load.
void check_options(const FaissIndexOptions& options) {
  if (options.nprobe < 1) fail(kWhat, "nprobe must be at least 1, got " + std::to_string(options.nprobe));
  if (options.ef_search < 1) fail(kWhat, "ef_search must be at least 1, got " + std::to_string(options.ef_search));
  if (options.threads < 0) fail(kWhat, "threads must not be negative, got " + std::to_string(options.threads));
}

// Search-time settings are plain members of the index; set once, so that search() stays const
// and safe to call from several threads.
void apply_search_options(faiss::Index& index, const FaissIndexOptions& options) {
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(&index))
    ivf->nprobe = std::min<std::size_t>(static_cast<std::size_t>(options.nprobe), ivf->nlist);
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(&index)) hnsw->hnsw.efSearch = options.ef_search;
}

// faiss::IOWriter onto our atomic writer: the index goes to a temporary file that replaces the
// target only once complete.
struct AtomicIndexWriter : faiss::IOWriter {
  explicit AtomicIndexWriter(io::detail::AtomicFileWriter& out) : out_(out) { name = out.path(); }
  std::size_t operator()(const void* ptr, std::size_t size, std::size_t nitems) override {
    out_.write(ptr, size * nitems);
    return nitems;
  }
  io::detail::AtomicFileWriter& out_;
};

// faiss::IOReader over a bounded file: a read past the end returns the whole items left, so that
// FAISS reports the truncation (as a FaissException) instead of reading garbage.
struct IndexFileReader : faiss::IOReader {
  explicit IndexFileReader(const io::detail::InputFile& file) : file_(file) { name = file.path(); }
  std::size_t operator()(void* ptr, std::size_t size, std::size_t nitems) override {
    if (size == 0 || nitems == 0) return 0;
    const std::uint64_t left = file_.size() - offset_;
    const std::size_t items = static_cast<std::size_t>(std::min<std::uint64_t>(nitems, left / size));
    file_.read_at(offset_, ptr, items * size, "FAISS index");
    offset_ += items * size;
    return items;
  }
  const io::detail::InputFile& file_;
  std::uint64_t offset_ = 0;
};

}  // namespace

struct FaissIndex::Impl {
  std::unique_ptr<faiss::Index> index;
  int threads = 0;
};

bool faiss_available() { return true; }

FaissIndex FaissIndex::build(const at::Tensor& embeddings, const FaissIndexOptions& options) {
  check_options(options);
  const at::Tensor x = host_matrix(embeddings, std::string(kWhat) + " embeddings");
  const std::int64_t rows = x.size(0), dim = x.size(1);
  if (rows < 1) fail(std::string(kWhat) + " embeddings", "no rows to index");
  const std::string what = std::string(kWhat) + " '" + options.description + "'";
  ScopedOmpThreads threads(options.threads);
  auto impl = std::make_unique<Impl>();
  impl->threads = options.threads;
  try {
    impl->index.reset(faiss::index_factory(static_cast<int>(dim), options.description.c_str(),
                                           faiss::METRIC_INNER_PRODUCT));
    // Too few rows to train nlist centroids: exact search is both better and cheap at this size.
    if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(impl->index.get());
        ivf && rows < options.min_rows_per_list * static_cast<std::int64_t>(ivf->nlist))
      impl->index = std::make_unique<faiss::IndexFlatIP>(dim);
    if (!impl->index->is_trained) impl->index->train(rows, x.data_ptr<float>());
    impl->index->add(rows, x.data_ptr<float>());
  } catch (const faiss::FaissException& e) {
    fail(what, faiss_reason(e));
  }
  apply_search_options(*impl->index, options);
  return FaissIndex(std::move(impl));
}

FaissIndex FaissIndex::load(const std::string& path, std::int64_t expected_rows, std::int64_t expected_dim,
                            const FaissIndexOptions& options) {
  check_options(options);
  const io::detail::InputFile file(path);  // a missing or unreadable file fails here, by name
  IndexFileReader reader(file);
  auto impl = std::make_unique<Impl>();
  impl->threads = options.threads;
  try {
    impl->index.reset(faiss::read_index(&reader));
  } catch (const Error&) {
    throw;  // our reader's I/O errors already name the file
  } catch (const faiss::FaissException& e) {
    fail(path, "not a FAISS index, or truncated: " + faiss_reason(e));
  } catch (const std::bad_alloc&) {
    fail(path, "not a FAISS index, or corrupt: it claims more memory than is available");
  } catch (const std::exception& e) {  // e.g. std::length_error from a corrupt size field
    fail(path, std::string("not a FAISS index, or corrupt: ") + e.what());
  }
  const faiss::Index& index = *impl->index;
  if (index.metric_type != faiss::METRIC_INNER_PRODUCT)
    fail(path, "the FAISS index does not use the inner-product metric (not written by FaissIndex::save)");
  if (index.ntotal != expected_rows || index.d != expected_dim)
    fail(path, "the FAISS index holds " + std::to_string(index.ntotal) + " vectors of width " +
                   std::to_string(index.d) + ", expected " + std::to_string(expected_rows) + " of width " +
                   std::to_string(expected_dim) + " (rebuild it)");
  if (!index.is_trained) fail(path, "the FAISS index is not trained");
  apply_search_options(*impl->index, options);
  return FaissIndex(std::move(impl));
}

std::vector<std::vector<Neighbor>> FaissIndex::search(const at::Tensor& queries, std::int64_t k) const {
  if (!impl_) fail(kWhat, "search on an index that was moved from");
  const faiss::Index& index = *impl_->index;
  const std::string what = std::string(kWhat) + " queries";
  const at::Tensor q = host_matrix(queries, what);
  if (q.size(1) != index.d)
    fail(what, "width " + std::to_string(q.size(1)) + " differs from the index's " + std::to_string(index.d));
  if (k < 1) fail(what, "k must be at least 1, got " + std::to_string(k));
  ScopedOmpThreads threads(impl_->threads);
  // The exact fallback is searched as exact search itself, so that its results are identical.
  if (const auto* flat = dynamic_cast<const faiss::IndexFlat*>(&index)) {
    const at::Tensor base = at::from_blob(const_cast<float*>(flat->get_xb()), {flat->ntotal, flat->d},
                                          at::TensorOptions().dtype(at::kFloat));
    return exact_top_k(q, base, k);
  }
  const std::int64_t nq = q.size(0), kk = std::min<std::int64_t>(k, index.ntotal);
  std::vector<float> similarities(static_cast<std::size_t>(nq * kk));
  std::vector<Label> labels(static_cast<std::size_t>(nq * kk));
  try {
    index.search(nq, q.data_ptr<float>(), kk, similarities.data(), labels.data());
  } catch (const faiss::FaissException& e) {
    fail(kWhat, "search failed: " + faiss_reason(e));
  }
  std::vector<std::vector<Neighbor>> result(static_cast<std::size_t>(nq));
  for (std::int64_t i = 0; i < nq; ++i) {
    auto& out = result[static_cast<std::size_t>(i)];
    out.reserve(static_cast<std::size_t>(kk));
    for (std::int64_t j = i * kk; j < (i + 1) * kk; ++j)
      if (labels[static_cast<std::size_t>(j)] >= 0)  // -1: fewer than k found in the probed lists
        out.push_back({labels[static_cast<std::size_t>(j)], similarities[static_cast<std::size_t>(j)]});
    sort_neighbors(out);
  }
  return result;
}

void FaissIndex::save(const std::string& path) const {
  if (!impl_) fail(kWhat, "save of an index that was moved from");
  io::detail::AtomicFileWriter out(path);
  AtomicIndexWriter writer(out);
  try {
    faiss::write_index(impl_->index.get(), &writer);
  } catch (const faiss::FaissException& e) {
    fail(path, "cannot write the FAISS index: " + faiss_reason(e));
  }
  out.commit();
}

std::int64_t FaissIndex::size() const { return impl_ ? impl_->index->ntotal : 0; }
std::int64_t FaissIndex::dim() const { return impl_ ? impl_->index->d : 0; }
std::string FaissIndex::description() const { return impl_ ? describe(*impl_->index) : ""; }

#else  // !BLIP_WITH_FAISS

namespace {
[[noreturn]] void no_faiss() {
  fail(kWhat, "this build of libblip has no FAISS (it needs libfaiss-dev and BLIP_WITH_FAISS=ON at configure time)");
}
}  // namespace

struct FaissIndex::Impl {};

bool faiss_available() { return false; }
FaissIndex FaissIndex::build(const at::Tensor&, const FaissIndexOptions&) { no_faiss(); }
FaissIndex FaissIndex::load(const std::string&, std::int64_t, std::int64_t, const FaissIndexOptions&) { no_faiss(); }
std::vector<std::vector<Neighbor>> FaissIndex::search(const at::Tensor&, std::int64_t) const { no_faiss(); }
void FaissIndex::save(const std::string&) const { no_faiss(); }
std::int64_t FaissIndex::size() const { no_faiss(); }
std::int64_t FaissIndex::dim() const { no_faiss(); }
std::string FaissIndex::description() const { no_faiss(); }

#endif  // BLIP_WITH_FAISS

FaissIndex::FaissIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaissIndex::FaissIndex(FaissIndex&&) noexcept = default;
FaissIndex& FaissIndex::operator=(FaissIndex&&) noexcept = default;
FaissIndex::~FaissIndex() = default;

}  // namespace blip::retrieval
