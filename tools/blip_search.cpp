// blip_search: searches an index written by blip_index.
//   blip_search --config FILE --index INDEX (--query TEXT... | --queries-file FILE | --image FILE...)
//               [--captions FILE] [--top-k K=10] [--rerank N=0] [--json] [--html FILE] [--faiss]
// Text -> images by ITC similarity; --rerank N rescores the top N with BLIP's ITM head and ranks
// them by itm_logit[:, 1] + itc, as BLIP's evaluation does. Image -> captions of --captions (same
// rerank), or without --captions the most similar images of the index.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "blip/blas_kernels.h"
#include "blip/error.h"
#include "blip/features/feature_extractor.h"
#include "blip/io/atomic_write.h"
#include "blip/retrieval/faiss_index.h"
#include "blip/retrieval/image_index.h"
#include "blip/retrieval/results_page.h"
#include "blip/retrieval/search_results.h"
#include "blip/retriever.h"
#include "cli_common.h"

namespace {

std::vector<std::string> texts_of(const std::vector<blip::features::Caption>& captions) {
  std::vector<std::string> out;
  for (const auto& c : captions) out.push_back(c.text);
  return out;
}

// The FAISS index of `index`, cached beside it as <index>.faiss while it is newer than the index.
blip::retrieval::FaissIndex faiss_for(const std::string& index_path, const blip::retrieval::ImageIndex& index,
                                      bool quiet) {
  namespace fs = std::filesystem;
  const std::string cache = index_path + ".faiss";
  std::error_code ec;
  if (fs::is_regular_file(cache, ec) && fs::last_write_time(cache, ec) >= fs::last_write_time(index_path, ec) && !ec) {
    try {
      return blip::retrieval::FaissIndex::load(cache, index.size(), index.embeddings.size(1));
    } catch (const blip::Error& e) {
      if (!quiet) std::fprintf(stderr, "blip_search: rebuilding the FAISS index (%s)\n", e.what());
    }
  }
  blip::retrieval::FaissIndex faiss = blip::retrieval::FaissIndex::build(index.embeddings);
  try {
    faiss.save(cache);
  } catch (const blip::Error& e) {  // a read-only folder: search anyway, without the cache
    if (!quiet) std::fprintf(stderr, "blip_search: FAISS index not cached: %s\n", e.what());
  }
  return faiss;
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);  // first: OpenBLAS reads OPENBLAS_CORETYPE only at load
  CLI::App app{"Search a blip_index index by text or by image, optionally reranked by BLIP's ITM head"};
  std::string config_path, index_path, queries_file, captions_file, html_path, checkpoint, vocab;
  std::string device_arg = "cpu", precision_arg = "fp32";
  std::vector<std::string> queries, images;
  std::int64_t top_k = 10, rerank = 0;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool json = false, use_faiss = false, quiet = false;
  app.add_option("--config", config_path, "retrieval YAML (BLIP's layout)")->required();
  app.add_option("--index", index_path, "index written by blip_index (not needed for --image with --captions)");
  auto* q_opt = app.add_option("--query", queries, "text query (repeatable)");
  auto* qf_opt = app.add_option("--queries-file", queries_file, "text file, one query per line");
  auto* img_opt = app.add_option("--image", images, "image query (repeatable)");
  q_opt->excludes(qf_opt)->excludes(img_opt);
  qf_opt->excludes(img_opt);
  app.add_option("--captions", captions_file, "image queries: rank these captions (one per line)");
  app.add_option("--top-k", top_k, "results per query")
      ->transform(blip::cli::int_range(1, std::int64_t{1} << 31))
      ->capture_default_str();
  app.add_option("--rerank", rerank, "rescore the top N candidates with the ITM head (0: ITC only)")
      ->transform(blip::cli::int_range(0, std::int64_t{1} << 31))
      ->capture_default_str();
  app.add_flag("--json", json, "one JSON object per query on stdout");
  app.add_option("--html", html_path, "also write a page with thumbnails and scores")->check(blip::cli::non_empty_path());
  app.add_flag("--faiss", use_faiss, "approximate search with FAISS (built once, cached as <index>.faiss)");
  app.add_option("--checkpoint", checkpoint, "checkpoint (.pth or .safetensors); overrides `pretrained`");
  app.add_option("--vocab", vocab, "vocab.txt or SentencePiece .model; overrides `tokenizer`");
  app.add_option("--device", device_arg, "cpu (default), cuda or cuda:<n>");
  app.add_option("--precision", precision_arg, "fp32 (default), bf16 or fp16 (cuda only)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_option("--threads", threads, "CPU threads for torch (default: all cores)")
      ->transform(blip::cli::int_range(1, blip::cli::kMaxThreads));
  app.add_flag("--quiet", quiet, "no notes on stderr");
  if (const int code = blip::cli::parse(app, argc, argv, "blip_search"); code >= 0) return code;

  try {
    if (queries.empty() && queries_file.empty() && images.empty())
      blip::fail("blip_search", "give --query TEXT, --queries-file FILE or --image FILE");
    if (!captions_file.empty() && images.empty())
      blip::fail("--captions", "ranks captions for image queries: give --image FILE");
    if (!queries_file.empty()) queries = texts_of(blip::features::read_captions_file(queries_file));
    if (!images.empty() && captions_file.empty() && rerank > 0)
      blip::fail("--rerank", "image-to-image search has no ITM rerank (the ITM head scores text): give --captions");
    const bool need_index = images.empty() || captions_file.empty();
    if (need_index && index_path.empty()) blip::fail("--index", "required for this search");
    if (use_faiss && !need_index) blip::fail("--faiss", "searches the index; captions are always searched exactly");
    if (use_faiss && !blip::retrieval::faiss_available())
      blip::fail("--faiss", "this build of libblip has no FAISS (install libfaiss-dev and rebuild)");
    // The page's folder must be writable before the model is loaded.
    if (!html_path.empty())
      blip::io::ensure_writable_directory(std::filesystem::absolute(html_path).parent_path().string());

    at::set_num_threads(threads);
    blip::retrieval::ImageIndex index;
    if (need_index) index = blip::retrieval::load_image_index(index_path);
    std::vector<std::string> captions;
    if (!captions_file.empty()) captions = texts_of(blip::features::read_captions_file(captions_file));

    blip::RetrieverOptions ro;
    ro.checkpoint = checkpoint;
    ro.vocab = vocab;
    ro.device = device_arg;
    ro.precision = precision_arg;
    const blip::Retriever retriever = blip::Retriever::load(config_path, ro);
    if (!quiet && !retriever.checkpoint_report().empty())
      std::fprintf(stderr, "checkpoint %s\n", retriever.checkpoint_report().c_str());

    std::optional<blip::retrieval::FaissIndex> faiss;
    blip::SearchOptions so;
    so.k = top_k;
    so.rerank = rerank;
    if (use_faiss) {
      faiss.emplace(faiss_for(index_path, index, quiet));
      so.approximate = &*faiss;
    }
    std::vector<blip::retrieval::QueryResults> results;
    if (!queries.empty()) results = retriever.search(queries, index, so);
    else if (!captions.empty()) results = retriever.search_captions(images, captions, so);
    else results = retriever.search_similar_images(images, index, so);

    for (const auto& r : results) {
      if (json) {
        std::printf("%s\n", blip::retrieval::results_json_line(r).c_str());
      } else {
        std::printf("%s\n", blip::retrieval::results_table(r).c_str());
      }
    }
    if (!html_path.empty()) {
      blip::retrieval::write_results_page(html_path, results);
      if (!quiet) std::fprintf(stderr, "blip_search: wrote %s\n", html_path.c_str());
    }
    blip::cli::note_cpu_bf16("blip_search", precision_arg == "bf16" && device_arg.rfind("cuda", 0) != 0);
    return 0;
  } catch (...) {
    return blip::cli::report_exception("blip_search", "lower --rerank");
  }
}
