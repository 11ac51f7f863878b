#include "blip/retrieval/search_results.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace blip::retrieval {
namespace {

// Key order as documented (query, results; rank, path|caption, itc, itm, score): nlohmann's
// default json would sort the keys.
using OrderedJson = nlohmann::ordered_json;

const char* label_key(ResultKind kind) { return kind == ResultKind::kCaption ? "caption" : "path"; }

// A float widened to double is exactly the same number, and nlohmann writes doubles with the
// shortest digits that read back as that double, so a reader gets the float back bit for bit.
OrderedJson score_json(float v) { return static_cast<double>(v); }

// Widths of the table's score columns; four decimals separate ITC similarities (in [-1, 1]) and
// ITM logits (a few units) well enough to read a ranking.
constexpr int kScoreWidth = 9;
constexpr int kScoreDecimals = 4;
constexpr int kMinRankWidth = 4;  // "rank"

std::string format_score(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%*.*f", kScoreWidth, kScoreDecimals, static_cast<double>(v));
  return buf;
}

std::string pad_left(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

// Control characters (a newline in a caption, an escape sequence in a file name) would break the
// table's rows or drive the terminal; they are shown as '?', as ls does.
std::string printable(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

}  // namespace

std::string results_json_line(const QueryResults& results) {
  OrderedJson hits = OrderedJson::array();
  for (const SearchHit& h : results.hits) {
    OrderedJson hit;
    hit["rank"] = h.rank;
    hit[label_key(results.kind)] = h.label;
    hit["itc"] = score_json(h.itc);
    hit["itm"] = h.itm ? score_json(*h.itm) : OrderedJson(nullptr);
    hit["score"] = score_json(h.score);
    hits.push_back(std::move(hit));
  }
  OrderedJson line;
  line["query"] = results.query;
  line["results"] = std::move(hits);
  // Paths on Linux are bytes, not necessarily UTF-8: such bytes become U+FFFD rather than
  // failing the whole search output.
  return line.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

std::string results_table(const QueryResults& results) {
  // The first line names the query, so that several tables in a row can be told apart.
  std::ostringstream out;
  out << (results.image_query ? "query image: " : "query: ") << printable(results.query) << '\n';
  if (results.hits.empty()) {
    out << "(no results)\n";
    return out.str();
  }
  std::size_t rank_width = kMinRankWidth;
  for (const SearchHit& h : results.hits)
    rank_width = std::max(rank_width, std::to_string(h.rank).size());

  out << pad_left("rank", rank_width) << ' ' << pad_left("score", kScoreWidth) << ' '
      << pad_left("itc", kScoreWidth) << ' ' << pad_left("itm", kScoreWidth) << "  "
      << label_key(results.kind) << '\n';
  for (const SearchHit& h : results.hits) {
    out << pad_left(std::to_string(h.rank), rank_width) << ' ' << format_score(h.score) << ' '
        << format_score(h.itc) << ' '
        << (h.itm ? format_score(*h.itm) : pad_left("-", kScoreWidth)) << "  "
        << printable(h.label) << '\n';
  }
  return out.str();
}

}  // namespace blip::retrieval
