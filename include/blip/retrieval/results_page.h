// Search results as one self-contained HTML page to open in a browser (blip_search --html): per
// query a heading (the query text, or the query image as a thumbnail) and a grid of result cards
// (a thumbnail for image results, the text for caption results; rank, score, itc, itm).
//
// The page embeds no images: thumbnails reference the files, by a path relative to the page's
// folder (percent-encoded), so the page stays small and can be moved together with the images;
// where no relative path exists they fall back to an absolute file:// URI. All text is
// HTML-escaped. A small inline script sets, once every <img> has loaded or failed,
//   <body data-images-loaded="<loaded>/<total>">
// (loaded = naturalWidth > 0), so a headless browser can check that the thumbnails resolve.
#pragma once

#include "blip/retrieval/search_results.h"

#include <string>
#include <utility>
#include <vector>

namespace blip::retrieval {

// The side, in CSS pixels, of the square each result thumbnail is fitted into.
inline constexpr int kDefaultThumbnailPx = 160;

struct ResultsPageOptions {
  std::string title = "libblip search results";
  // Lines under the title (e.g. {"index", "photos.idx"}, {"model", "..."}), shown as given.
  std::vector<std::pair<std::string, std::string>> info;
  int thumbnail_px = kDefaultThumbnailPx;
};

// The page's HTML for `results`, with image references relative to `page_dir` (the folder the
// page will be written to; relative to the current directory when relative itself).
std::string render_results_page(const std::vector<QueryResults>& results, const std::string& page_dir,
                                const ResultsPageOptions& options = {});

// Writes the page atomically (blip::io::write_file_atomic); the parent folder must exist.
// Throws blip::Error naming html_path.
void write_results_page(const std::string& html_path, const std::vector<QueryResults>& results,
                        const ResultsPageOptions& options = {});

// The URL reference the page uses for `image_path` (relative to the current directory when
// relative): the percent-encoded path relative to `page_dir`, or file:///... when there is none.
std::string image_reference(const std::string& image_path, const std::string& page_dir);

}  // namespace blip::retrieval
