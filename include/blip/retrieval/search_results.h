// What a search returns, and its renderings: one JSON object per query (blip_search --json) and a
// table. Scores follow BLIP's evaluation: `itc` is the ITC similarity, `itm` the ITM head's
// "match" logit itm_logit[:, 1] (only for reranked results) and `score` the ranking score,
// itm + itc when reranked (evaluation()'s score matrices), itc otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace blip::retrieval {

// What a query searches for: images of an index, or captions of a list.
enum class ResultKind { kImage, kCaption };

struct SearchHit {
  std::int64_t rank = 0;   // 1-based
  std::int64_t item = 0;   // row of the index (images) or of the caption list
  std::string label;       // the image's path or the caption
  float itc = 0.0f;
  std::optional<float> itm;
  float score = 0.0f;
};

struct QueryResults {
  std::string query;        // the query text, or the query image's path
  bool image_query = false;
  ResultKind kind = ResultKind::kImage;
  std::vector<SearchHit> hits;  // by rank
};

// {"query": "...", "results": [{"rank": 1, "path": "...", "itc": s, "itm": l_or_null,
// "score": x}, ...]} on one line ("caption" instead of "path" for caption results). Scores are
// written with enough digits to read back the same float.
std::string results_json_line(const QueryResults& results);

// A fixed-width table for a terminal: a first line naming the query ("query: ..." or "query
// image: ..."), then one row per hit: rank, score, itc, itm ("-" when absent), label.
std::string results_table(const QueryResults& results);

}  // namespace blip::retrieval
