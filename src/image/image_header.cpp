#include "image/image_header.h"

#include "blip/error.h"

#include <cstring>
#include <string>

namespace blip::image::detail {
namespace {

std::uint32_t be16(const std::uint8_t* p) { return (std::uint32_t{p[0]} << 8) | p[1]; }
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}
std::uint32_t le16(const std::uint8_t* p) { return (std::uint32_t{p[1]} << 8) | p[0]; }
std::uint32_t le24(const std::uint8_t* p) {
  return (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[1]} << 8) | p[0];
}
std::uint32_t le32(const std::uint8_t* p) { return (le16(p + 2) << 16) | le16(p); }

std::string hex_byte(unsigned v) {
  static const char* digits = "0123456789ABCDEF";
  return std::string{digits[(v >> 4) & 15], digits[v & 15]};
}

bool starts_with(const std::uint8_t* data, std::size_t size, const char* magic, std::size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

constexpr char kPngSignature[] = "\x89PNG\r\n\x1a\n";
constexpr std::size_t kPngSignatureBytes = 8;

// Walks the PNG chunks from IHDR to IEND. Chunk contents (and CRCs) are left to the decoder.
// Like PIL, a file that ends after its image data but before IEND is accepted (marked
// png_missing_iend); one that ends before or inside the IDAT chunks is truncated.
void read_png(const std::uint8_t* data, std::size_t size, const std::string& what,
              ImageHeader& header) {
  std::size_t pos = kPngSignatureBytes;
  bool seen_ihdr = false, seen_idat = false;
  auto ends_early = [&](const std::string& detail) {
    if (!seen_ihdr) fail(what, "truncated PNG file (the IHDR chunk is incomplete)");
    if (!seen_idat) fail(what, "truncated PNG file (" + detail + ", before any image data)");
    header.png_missing_iend = true;
    header.png_complete_bytes = pos;
  };
  while (true) {
    if (size - pos < 8) {
      ends_early("it ends at byte " + std::to_string(size) + " before the IEND chunk");
      return;
    }
    const std::uint32_t length = be32(data + pos);
    const std::string type(reinterpret_cast<const char*>(data + pos + 4), 4);
    if (length > 0x7FFFFFFFu)
      fail(what, "invalid PNG file (chunk '" + type + "' has length " + std::to_string(length) +
                     ")");
    const std::size_t chunk_end = pos + 12 + std::size_t{length};  // length, type, data, CRC
    if (!seen_ihdr) {
      if (type != "IHDR" || length != 13) fail(what, "invalid PNG file (no IHDR chunk first)");
      if (chunk_end > size) fail(what, "truncated PNG file (the IHDR chunk is incomplete)");
      header.width = be32(data + pos + 8);
      header.height = be32(data + pos + 12);
      header.has_size = true;
      seen_ihdr = true;
    }
    if (chunk_end > size) {
      const std::string detail = "chunk '" + type + "' at byte " + std::to_string(pos) +
                                 " runs past the end of the file, " + std::to_string(size) +
                                 " bytes";
      if (type == "IDAT") fail(what, "truncated PNG file (" + detail + ")");
      ends_early(detail);
      return;
    }
    if (type == "IDAT") seen_idat = true;
    if (type == "IEND") break;
    pos = chunk_end;
  }
  if (!seen_idat) fail(what, "invalid PNG file (no image data: no IDAT chunk)");
}

bool is_jpeg_frame_marker(unsigned m) {
  // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC) which share the range.
  return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

// Walks the JPEG markers from SOI to EOI, skipping entropy-coded scan data, and reads the frame
// size from the first SOFn segment.
void read_jpeg(const std::uint8_t* data, std::size_t size, const std::string& what,
               ImageHeader& header) {
  const std::string truncated_at_end =
      "truncated JPEG file (it ends at byte " + std::to_string(size) +
      " before the end-of-image marker)";
  std::size_t pos = 2;  // after SOI
  bool seen_frame = false;
  while (true) {
    // Like libjpeg, tolerate stray bytes between segments; 0xFF bytes before a marker are fill.
    while (pos < size && data[pos] != 0xFF) ++pos;
    while (pos < size && data[pos] == 0xFF) ++pos;
    if (pos >= size) fail(what, truncated_at_end);
    const unsigned marker = data[pos++];
    if (marker == 0xD9) break;                                    // EOI
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no payload
    if (marker == 0x00) continue;  // a stuffed 0xFF00 outside a scan: stray data
    if (size - pos < 2) fail(what, truncated_at_end);
    const std::size_t length = be16(data + pos);
    if (length < 2)
      fail(what, "invalid JPEG file (marker 0xFF" + hex_byte(marker) + " at byte " +
                     std::to_string(pos - 2) + " has length " + std::to_string(length) + ")");
    if (length > size - pos)
      fail(what, "truncated JPEG file (segment 0xFF" + hex_byte(marker) + " at byte " +
                     std::to_string(pos - 2) + " runs past the end of the file, " +
                     std::to_string(size) + " bytes)");
    if (is_jpeg_frame_marker(marker) && !seen_frame) {
      if (length < 8) fail(what, "invalid JPEG file (frame header too short)");
      header.height = be16(data + pos + 3);
      header.width = be16(data + pos + 5);
      header.has_size = header.height != 0;  // 0: height given later by a DNL marker
      seen_frame = true;
    }
    pos += length;
    if (marker == 0xDA) {
      if (!seen_frame) fail(what, "invalid JPEG file (scan before the frame header)");
      // Entropy-coded data runs to the next marker: 0xFF not followed by 0x00 (a stuffed
      // byte) or by a restart marker RST0..RST7.
      while (true) {
        const void* ff = pos < size ? std::memchr(data + pos, 0xFF, size - pos) : nullptr;
        if (!ff) fail(what, truncated_at_end);
        pos = static_cast<const std::uint8_t*>(ff) - data;
        if (pos + 1 >= size) fail(what, truncated_at_end);
        const unsigned next = data[pos + 1];
        if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
          pos += 2;
          continue;
        }
        if (next == 0xFF) {  // fill byte: the marker follows
          ++pos;
          continue;
        }
        break;
      }
    }
  }
  if (!seen_frame) fail(what, "invalid JPEG file (no frame header)");
}

// BMP: BITMAPCOREHEADER (12 bytes, 16-bit sizes) or BITMAPINFOHEADER and later (signed 32-bit;
// a negative height means top-down rows).
void read_bmp(const std::uint8_t* data, std::size_t size, ImageHeader& header) {
  if (size < 26) return;
  const std::uint32_t dib_size = le32(data + 14);
  if (dib_size == 12) {
    header.width = le16(data + 18);
    header.height = le16(data + 20);
  } else {
    if (dib_size < 16) return;
    header.width = static_cast<std::int32_t>(le32(data + 18));
    const std::int64_t h = static_cast<std::int32_t>(le32(data + 22));
    header.height = h < 0 ? -h : h;
  }
  header.has_size = true;
}

// WebP: the first chunk of the RIFF container is VP8 (lossy), VP8L (lossless) or VP8X
// (extended, holding the canvas size).
void read_webp(const std::uint8_t* data, std::size_t size, ImageHeader& header) {
  if (size < 30) return;
  const std::uint8_t* chunk = data + 12;
  if (std::memcmp(chunk, "VP8 ", 4) == 0) {
    const std::uint8_t* frame = chunk + 8;  // 3-byte frame tag, start code 9D 01 2A, sizes
    if (frame[3] != 0x9D || frame[4] != 0x01 || frame[5] != 0x2A) return;
    header.width = le16(frame + 6) & 0x3FFF;
    header.height = le16(frame + 8) & 0x3FFF;
    header.has_size = true;
  } else if (std::memcmp(chunk, "VP8L", 4) == 0) {
    const std::uint8_t* bits = chunk + 8;
    if (bits[0] != 0x2F) return;
    const std::uint32_t v = le32(bits + 1);
    header.width = (v & 0x3FFF) + 1;
    header.height = ((v >> 14) & 0x3FFF) + 1;
    header.has_size = true;
  } else if (std::memcmp(chunk, "VP8X", 4) == 0) {
    header.width = std::int64_t{le24(chunk + 12)} + 1;
    header.height = std::int64_t{le24(chunk + 15)} + 1;
    header.has_size = true;
  }
}

// TIFF: ImageWidth (256) and ImageLength (257) from the first IFD.
void read_tiff(const std::uint8_t* data, std::size_t size, ImageHeader& header) {
  if (size < 8) return;
  const bool little = data[0] == 'I';
  auto u16 = [&](std::size_t at) { return little ? le16(data + at) : be16(data + at); };
  auto u32 = [&](std::size_t at) { return little ? le32(data + at) : be32(data + at); };
  if (u16(2) != 42) return;  // BigTIFF (43) is left to the decoder
  const std::size_t ifd = u32(4);
  if (ifd > size || size - ifd < 2) return;
  const std::size_t entries = u16(ifd);
  bool have_w = false, have_h = false;
  for (std::size_t i = 0; i < entries; ++i) {
    const std::size_t e = ifd + 2 + 12 * i;
    if (e > size || size - e < 12) return;
    const std::uint32_t tag = u16(e), type = u16(e + 2);
    if (tag != 256 && tag != 257) continue;
    std::uint32_t value;
    if (type == 3) value = u16(e + 8);        // SHORT
    else if (type == 4) value = u32(e + 8);   // LONG
    else return;
    if (tag == 256) header.width = value, have_w = true;
    else header.height = value, have_h = true;
  }
  header.has_size = have_w && have_h;
}

}  // namespace

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kTiff: return "TIFF";
    case ImageFormat::kGif: return "GIF";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

ImageFormat sniff_format(const std::uint8_t* data, std::size_t size) {
  if (starts_with(data, size, kPngSignature, kPngSignatureBytes)) return ImageFormat::kPng;
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::kJpeg;
  if (starts_with(data, size, "BM", 2)) return ImageFormat::kBmp;
  if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0)
    return ImageFormat::kWebp;
  if (starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4) ||
      starts_with(data, size, "II+\0", 4) || starts_with(data, size, "MM\0+", 4))
    return ImageFormat::kTiff;
  if (starts_with(data, size, "GIF87a", 6) || starts_with(data, size, "GIF89a", 6))
    return ImageFormat::kGif;
  return ImageFormat::kUnknown;
}

ImageHeader read_image_header(const std::uint8_t* data, std::size_t size, const std::string& what) {
  ImageHeader header;
  header.format = sniff_format(data, size);
  switch (header.format) {
    case ImageFormat::kPng: read_png(data, size, what, header); break;
    case ImageFormat::kJpeg: read_jpeg(data, size, what, header); break;
    case ImageFormat::kBmp: read_bmp(data, size, header); break;
    case ImageFormat::kWebp: read_webp(data, size, header); break;
    case ImageFormat::kTiff: read_tiff(data, size, header); break;
    case ImageFormat::kGif:
      if (size >= 10) {
        header.width = le16(data + 6);
        header.height = le16(data + 8);
        header.has_size = true;
      }
      break;
    case ImageFormat::kUnknown: break;
  }
  return header;
}

}  // namespace blip::image::detail
