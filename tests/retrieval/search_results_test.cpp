// results_json_line (blip_search --json) and results_table.
#include "blip/retrieval/search_results.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace blip::retrieval;

namespace {

SearchHit hit(std::int64_t rank, std::int64_t item, std::string label, float itc,
              std::optional<float> itm) {
  SearchHit h;
  h.rank = rank;
  h.item = item;
  h.label = std::move(label);
  h.itc = itc;
  h.itm = itm;
  h.score = itm ? *itm + itc : itc;
  return h;
}

QueryResults image_results() {
  QueryResults q;
  q.query = "a dog \"running\" on grass\nnext line";
  q.kind = ResultKind::kImage;
  q.hits = {hit(1, 7, "photos/dog.jpg", 0.1f, 3.25f), hit(2, 2, "photos/ü cat.png", -0.3456789f, std::nullopt),
            hit(3, 0, "/abs/x.png", 1e-30f, -7.123456f)};
  return q;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Bits of a float, to compare exactly (and -0.0 apart from 0.0).
std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

TEST(SearchResultsJson, ParsesBackWithEveryField) {
  const QueryResults q = image_results();
  const std::string line = results_json_line(q);
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one line";
  EXPECT_EQ(line.rfind("{\"query\":", 0), 0u) << "documented key order: " << line;
  EXPECT_NE(line.back(), '\n');

  const nlohmann::json j = nlohmann::json::parse(line);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 2u);
  EXPECT_EQ(j.at("query"), q.query);
  const nlohmann::json& r = j.at("results");
  ASSERT_EQ(r.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const SearchHit& h = q.hits[i];
    const nlohmann::json& e = r[i];
    EXPECT_EQ(e.size(), 5u) << e.dump();  // rank, path, itc, itm, score
    EXPECT_EQ(e.at("rank").get<std::int64_t>(), h.rank);
    EXPECT_EQ(e.at("path").get<std::string>(), h.label);
    EXPECT_FALSE(e.contains("caption"));
    EXPECT_EQ(bits(static_cast<float>(e.at("itc").get<double>())), bits(h.itc)) << i;
    EXPECT_EQ(bits(static_cast<float>(e.at("score").get<double>())), bits(h.score)) << i;
    if (h.itm) {
      EXPECT_EQ(bits(static_cast<float>(e.at("itm").get<double>())), bits(*h.itm)) << i;
    } else {
      EXPECT_TRUE(e.at("itm").is_null()) << e.dump();
    }
  }
  // Keys within a hit in the documented order too.
  EXPECT_NE(line.find("{\"rank\":1,\"path\":\"photos/dog.jpg\",\"itc\":"), std::string::npos) << line;
  EXPECT_NE(line.find("\"itm\":null"), std::string::npos);
}

TEST(SearchResultsJson, FloatsReadBackBitExact) {
  // Values whose shortest double text is long, extremes, a denormal and negative zero.
  const float values[] = {0.1f,
                          1.0f / 3.0f,
                          -0.0f,
                          std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::min(),
                          16777217.0f,
                          0.123456789f,
                          -42.5f};
  QueryResults q;
  q.query = "q";
  for (std::size_t i = 0; i < std::size(values); ++i)
    q.hits.push_back(hit(static_cast<std::int64_t>(i + 1), 0, "p", values[i], values[i]));
  const nlohmann::json j = nlohmann::json::parse(results_json_line(q));
  ASSERT_EQ(j["results"].size(), std::size(values));
  for (std::size_t i = 0; i < std::size(values); ++i) {
    const double itc = j["results"][i]["itc"].get<double>();
    EXPECT_EQ(itc, static_cast<double>(values[i])) << "exactly the float's value, " << i;
    EXPECT_EQ(bits(static_cast<float>(itc)), bits(values[i])) << i;
    EXPECT_EQ(bits(static_cast<float>(j["results"][i]["itm"].get<double>())), bits(values[i])) << i;
  }
}

TEST(SearchResultsJson, CaptionResultsUseCaptionKey) {
  QueryResults q;
  q.query = "query.jpg";
  q.image_query = true;
  q.kind = ResultKind::kCaption;
  q.hits = {hit(1, 4, "a man <b>riding</b> a horse & cart", 0.5f, std::nullopt)};
  const nlohmann::json j = nlohmann::json::parse(results_json_line(q));
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_EQ(j["results"][0].at("caption"), "a man <b>riding</b> a horse & cart");
  EXPECT_FALSE(j["results"][0].contains("path"));
  EXPECT_TRUE(j["results"][0].at("itm").is_null());
  EXPECT_EQ(j["results"][0].at("rank"), 1);
}

TEST(SearchResultsJson, NoHitsAndInvalidUtf8) {
  QueryResults q;
  q.query = "nothing";
  EXPECT_EQ(results_json_line(q), "{\"query\":\"nothing\",\"results\":[]}");
  // A file name that is not UTF-8 (Linux paths are bytes): still one valid JSON line.
  q.hits = {hit(1, 0, std::string("bad\xff\xfe.jpg"), 0.25f, std::nullopt)};
  std::string line;
  ASSERT_NO_THROW(line = results_json_line(q));
  const nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j["results"][0]["path"].get<std::string>(), "bad\xEF\xBF\xBD\xEF\xBF\xBD.jpg");
}

TEST(SearchResultsTable, ExactLayout) {
  QueryResults q;
  q.query = "red car";
  q.hits = {hit(1, 3, "cars/red.png", 0.5f, 2.0f), hit(2, 1, "cars/blue.png", -0.125f, std::nullopt)};
  q.hits[0].score = 2.5f;
  EXPECT_EQ(results_table(q),
            "query: red car\n"
            "rank     score       itc       itm  path\n"
            "   1    2.5000    0.5000    2.0000  cars/red.png\n"
            "   2   -0.1250   -0.1250         -  cars/blue.png\n");
}

TEST(SearchResultsTable, CaptionsWideRanksAndControlCharacters) {
  QueryResults q;
  q.query = "img/query.jpg";
  q.image_query = true;
  q.kind = ResultKind::kCaption;
  q.hits = {hit(9, 0, "two\nlines\x1b[31m", 0.5f, 1.0f), hit(123456, 1, "a dog", 12.345678f, -3.0f)};
  const std::vector<std::string> lines = lines_of(results_table(q));
  ASSERT_EQ(lines.size(), 4u) << results_table(q);
  EXPECT_EQ(lines[0], "query image: img/query.jpg");
  EXPECT_EQ(lines[1].substr(lines[1].size() - 9), "  caption");
  EXPECT_EQ(lines[1].substr(0, 6), "  rank");
  // The rank column grows to fit 123456, so the label column starts at the same place in every row.
  const std::size_t label_at = lines[1].find("caption");
  EXPECT_EQ(lines[2].substr(label_at), "two?lines?[31m");
  EXPECT_EQ(lines[3].substr(label_at), "a dog");
  EXPECT_EQ(lines[3].substr(0, 6), "123456");
  EXPECT_NE(lines[3].find("12.3457"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("-3.0000"), std::string::npos) << lines[3];
}

TEST(SearchResultsTable, NoHits) {
  QueryResults q;
  q.query = "x";
  EXPECT_EQ(results_table(q), "query: x\n(no results)\n");
}

}  // namespace
