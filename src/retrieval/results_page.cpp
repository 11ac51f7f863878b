#include "blip/retrieval/results_page.h"

#include "core/html_escape.h"

#include "blip/error.h"
#include "blip/io/atomic_write.h"

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <system_error>

namespace fs = std::filesystem;

namespace blip::retrieval {
namespace {

// Decimals of the scores on the cards: enough to tell neighbouring ranks apart.
constexpr int kCardDecimals = 4;
// The query image is shown larger than the result thumbnails.
constexpr double kQueryThumbScale = 1.5;

// RFC 3986 unreserved characters stay; '/' separates segments; every other byte (UTF-8 or not)
// becomes %XX, so ':' can never be read as a scheme and '#', '?' never end the path.
std::string percent_encode_path(const std::string& path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const char c : path) {
    const auto u = static_cast<unsigned char>(c);
    const bool keep = (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
                      u == '-' || u == '.' || u == '_' || u == '~' || u == '/';
    if (keep) {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

// An absolute, lexically normal folder path without a trailing separator (lexically_relative
// treats "/a/b/" as having an empty last element).
fs::path normal_dir(const fs::path& dir) {
  fs::path p = fs::absolute(dir.empty() ? fs::path(".") : dir).lexically_normal();
  if (!p.has_filename() && p != p.root_path()) p = p.parent_path();
  return p;
}

std::string format_score(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", kCardDecimals, static_cast<double>(v));
  return buf;
}

std::string file_name_of(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  return name.empty() ? path : name;
}

const char* kStyle = R"(
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .3em}
h2{font-size:1.15em;margin:1.6em 0 .4em;word-break:break-all}
.info{color:#555;margin:0 0 1em;font-size:.9em}
.info span{margin-right:1.5em}
.meta{color:#666;font-size:.85em;margin:.2em 0 .6em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(var(--card),1fr));gap:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;overflow:hidden}
.thumb{width:var(--thumb);height:var(--thumb);object-fit:contain;background:#eee;display:block}
.query-thumb{width:var(--qthumb);height:var(--qthumb);object-fit:contain;background:#eee;display:block}
img.missing{outline:2px solid #c33}
.label{font-size:.8em;color:#444;margin-top:4px;word-break:break-all}
.caption{margin:0 0 6px;font-size:.95em}
.scores{font-size:.8em;color:#333;border-collapse:collapse;margin-top:4px}
.scores td{padding:0 6px 0 0}
.rank{font-weight:bold}
)";

// Sets <body data-images-loaded="loaded/total"> once every image has loaded or failed (an image
// that is already complete, broken or not, counts at once) and marks the failed ones.
const char* kScript = R"(
(function () {
  var imgs = Array.prototype.slice.call(document.images), left = imgs.length;
  function done() {
    var loaded = 0;
    imgs.forEach(function (im) {
      if (im.naturalWidth > 0) loaded++; else im.classList.add('missing');
    });
    document.body.dataset.imagesLoaded = loaded + '/' + imgs.length;
  }
  function settle() { if (--left === 0) done(); }
  if (left === 0) { done(); return; }
  imgs.forEach(function (im) {
    if (im.complete) { settle(); return; }
    im.addEventListener('load', settle);
    im.addEventListener('error', settle);
  });
})();
)";

void write_thumbnail(std::ostringstream& out, const std::string& path, const std::string& page_dir,
                     const char* css_class) {
  const std::string ref = html::escape(image_reference(path, page_dir));
  out << "<a href=\"" << ref << "\"><img class=\"" << css_class << "\" src=\"" << ref << "\" alt=\""
      << html::escape(file_name_of(path)) << "\" title=\"" << html::escape(path) << "\"></a>";
}

void write_card(std::ostringstream& out, const SearchHit& hit, ResultKind kind,
                const std::string& page_dir) {
  out << "<div class=\"card\">";
  if (kind == ResultKind::kImage) {
    write_thumbnail(out, hit.label, page_dir, "thumb");
    out << "<div class=\"label\" title=\"" << html::escape(hit.label) << "\">"
        << html::escape(file_name_of(hit.label)) << "</div>";
  } else {
    out << "<p class=\"caption\">" << html::escape(hit.label) << "</p>";
  }
  out << "<table class=\"scores\"><tr><td class=\"rank\">#" << hit.rank << "</td><td>score "
      << format_score(hit.score) << "</td></tr><tr><td>itc</td><td>" << format_score(hit.itc)
      << "</td></tr><tr><td>itm</td><td>" << (hit.itm ? format_score(*hit.itm) : "-")
      << "</td></tr></table></div>\n";
}

void write_query(std::ostringstream& out, const QueryResults& q, std::size_t number,
                 const std::string& page_dir) {
  out << "<section class=\"query\">\n<h2>Query " << number << ": ";
  if (q.image_query) {
    out << "image <span title=\"" << html::escape(q.query) << "\">" << html::escape(q.query)
        << "</span></h2>\n";
    write_thumbnail(out, q.query, page_dir, "query-thumb");
    out << '\n';
  } else {
    out << "&ldquo;" << html::escape(q.query) << "&rdquo;</h2>\n";
  }
  const bool images = q.kind == ResultKind::kImage;
  out << "<p class=\"meta\">" << q.hits.size() << ' '
      << (images ? (q.hits.size() == 1 ? "image" : "images") : (q.hits.size() == 1 ? "caption" : "captions"))
      << "</p>\n<div class=\"grid\">\n";
  for (const SearchHit& hit : q.hits) write_card(out, hit, q.kind, page_dir);
  out << "</div>\n</section>\n";
}

}  // namespace

std::string image_reference(const std::string& image_path, const std::string& page_dir) {
  if (image_path.empty()) return "";
  std::error_code ec;
  const fs::path image = fs::absolute(fs::path(image_path), ec).lexically_normal();
  if (ec) return percent_encode_path(image_path);  // no current directory: the path as given
  fs::path rel;
  try {
    rel = image.lexically_relative(normal_dir(fs::path(page_dir)));
  } catch (const fs::filesystem_error&) {
    rel.clear();
  }
  if (!rel.empty() && rel.is_relative()) return percent_encode_path(rel.generic_string());
  return "file://" + percent_encode_path(image.generic_string());
}

std::string render_results_page(const std::vector<QueryResults>& results, const std::string& page_dir,
                                const ResultsPageOptions& options) {
  if (options.thumbnail_px <= 0)
    fail("results page", "thumbnail size must be positive, got " + std::to_string(options.thumbnail_px));
  const int thumb = options.thumbnail_px;
  const int query_thumb = static_cast<int>(thumb * kQueryThumbScale);
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>"
      << html::escape(options.title) << "</title>\n<style>\n:root{--thumb:" << thumb
      << "px;--qthumb:" << query_thumb << "px;--card:" << thumb + 18 << "px}" << kStyle
      << "</style>\n</head>\n<body>\n<h1>" << html::escape(options.title) << "</h1>\n";
  if (!options.info.empty()) {
    out << "<p class=\"info\">";
    for (const auto& [key, value] : options.info)
      out << "<span><b>" << html::escape(key) << "</b> " << html::escape(value) << "</span>";
    out << "</p>\n";
  }
  if (results.empty()) out << "<p class=\"meta\">no queries</p>\n";
  for (std::size_t i = 0; i < results.size(); ++i) write_query(out, results[i], i + 1, page_dir);
  out << "<script>" << kScript << "</script>\n</body>\n</html>\n";
  return out.str();
}

void write_results_page(const std::string& html_path, const std::vector<QueryResults>& results,
                        const ResultsPageOptions& options) {
  if (html_path.empty()) fail("results page", "empty output path");
  const fs::path parent = fs::path(html_path).parent_path();
  io::write_file_atomic(html_path, render_results_page(results, parent.string(), options));
}

}  // namespace blip::retrieval
