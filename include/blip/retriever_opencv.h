// blip::Retriever with OpenCV images: cv::Mat (8-bit, BGR as cv::imread gives it, or gray, or
// BGRA) -> the RGB ImageU8 the Retriever takes. Header-only, so libblip's other headers need no
// OpenCV; include it where the application already uses OpenCV.
#pragma once

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <string>
#include <vector>

#include "blip/error.h"
#include "blip/image/image_u8.h"
#include "blip/retriever.h"

namespace blip {

// Drops alpha as PIL's convert('RGB') does; gray is replicated to R, G, B.
inline image::ImageU8 to_image_u8(const cv::Mat& mat, const std::string& what = "cv::Mat") {
  if (mat.empty()) fail(what, "is empty");
  if (mat.depth() != CV_8U) fail(what, "must be 8-bit per channel (CV_8U)");
  cv::Mat rgb;
  switch (mat.channels()) {
    case 1: cv::cvtColor(mat, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(mat, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(mat, rgb, cv::COLOR_BGRA2RGB); break;
    default: fail(what, "must have 1, 3 or 4 channels, has " + std::to_string(mat.channels()));
  }
  image::ImageU8 out(rgb.cols, rgb.rows);
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* src = rgb.ptr<std::uint8_t>(y);
    std::copy(src, src + static_cast<std::size_t>(rgb.cols) * 3, out.row(y));
  }
  return out;
}

// Normalized ITC embeddings of cv::Mat images (see Retriever::encode_decoded_images).
inline Embeddings encode_mats(const Retriever& retriever, const std::vector<cv::Mat>& mats) {
  std::vector<image::ImageU8> images;
  images.reserve(mats.size());
  for (std::size_t i = 0; i < mats.size(); ++i) images.push_back(to_image_u8(mats[i], "image " + std::to_string(i + 1)));
  return retriever.encode_decoded_images(images);
}

}  // namespace blip
