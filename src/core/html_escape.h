// Text for HTML pages (the training report, search result pages): &, <, >, " and ' as entities,
// so that captions and file names show as text in element content and quoted attributes.
#pragma once

#include <string>

namespace blip::html {

std::string escape(const std::string& text);

}  // namespace blip::html
