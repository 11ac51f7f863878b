// image_search: indexes a folder of images with BLIP and searches it by a text query.
//   image_search --config FILE [--checkpoint FILE] --images DIR --query TEXT [--top-k K] [--rerank N]
// Uses only the simple path of <blip/retriever.h>: paths and strings in, scores out.
#include <blip/error.h>
#include <blip/retriever.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace {

const std::string kUsage =
    "usage: image_search --config FILE [--checkpoint FILE] --images DIR --query TEXT [--top-k K] [--rerank N]";

// A count given on the command line, at least `min`.
long long parse_count(const std::string& flag, const std::string& value, long long min) {
  char* end = nullptr;
  const long long n = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || n < min)
    blip::fail(flag, "expects an integer >= " + std::to_string(min) + ", got '" + value + "'");
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string config, checkpoint, images, query;
    long long top_k = 5, rerank = 0;
    for (int i = 1; i < argc; i += 2) {
      const std::string flag = argv[i];
      if (i + 1 >= argc) blip::fail(flag, "needs a value; " + kUsage);
      const std::string value = argv[i + 1];
      if (flag == "--config") config = value;
      else if (flag == "--checkpoint") checkpoint = value;
      else if (flag == "--images") images = value;
      else if (flag == "--query") query = value;
      else if (flag == "--top-k") top_k = parse_count(flag, value, 1);
      else if (flag == "--rerank") rerank = parse_count(flag, value, 0);
      else blip::fail(flag, "unknown option; " + kUsage);
    }
    if (config.empty() || images.empty() || query.empty())
      blip::fail("--config, --images and --query", "required; " + kUsage);

    // The config (BLIP's retrieval YAML) names the tokenizer and, unless overridden, the checkpoint.
    blip::RetrieverOptions options;
    options.checkpoint = checkpoint;  // "" = the config's `pretrained`
    options.device = "cpu";           // or "cuda", "cuda:1"
    const blip::Retriever retriever = blip::Retriever::load(config, options);

    // Embed every image under the folder; unreadable ones are reported, not fatal.
    const std::vector<std::string> paths = blip::retrieval::list_image_files(images);
    std::vector<blip::SkippedImage> skipped;
    const blip::retrieval::ImageIndex index = retriever.build_index(paths, {}, &skipped);
    for (const blip::SkippedImage& s : skipped) std::printf("skipped %s: %s\n", s.path.c_str(), s.reason.c_str());
    std::printf("indexed %lld of %zu images\n\n", static_cast<long long>(index.size()), paths.size());

    // ITC search; with --rerank N the top N are rescored by the ITM head (BLIP's itm + itc).
    const blip::retrieval::QueryResults results = retriever.search(query, index, top_k, rerank);
    std::printf("%s", blip::retrieval::results_table(results).c_str());  // "query: ...", then the table

    // One image against one caption: ITC, the ITM logit and its "match" probability.
    if (!results.hits.empty()) {
      const std::string& best = results.hits.front().label;
      const blip::Match m = retriever.match(best, {query}).front();
      std::printf("\ntop hit %s: ITM match probability %.4f (itm logit %.4f, itc %.4f)\n", best.c_str(),
                  m.itm_probability, m.itm_logit, m.itc);
    }
    return 0;
  } catch (const blip::Error& e) {  // bad flags, a bad config or checkpoint, an empty query...
    std::fprintf(stderr, "image_search: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // not expected: libblip reports bad input as blip::Error
    std::fprintf(stderr, "image_search: internal error: %s\n", e.what());
    return 1;
  }
}
