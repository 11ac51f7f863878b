// A minimal PNG writer for tests: any colour type and bit depth, optional PLTE/tRNS, and
// arbitrary header dimensions (to craft decompression bombs). Pixel data is stored in
// uncompressed deflate blocks, so no zlib is needed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace blip::test {

inline std::uint32_t png_crc32(const std::uint8_t* p, std::size_t n, std::uint32_t crc = 0) {
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

struct PngSpec {
  std::uint32_t width = 0, height = 0;
  int bit_depth = 8;
  int color_type = 2;                // 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA
  std::vector<std::uint8_t> rows;    // raw scanlines WITHOUT filter bytes, big-endian samples
  std::vector<std::uint8_t> plte;    // palette RGB triples (color type 3)
  std::vector<std::uint8_t> trns;    // tRNS chunk payload, if any
  std::size_t idat_bytes = 1 << 20;  // the zlib stream is split into IDAT chunks of this size
};

// PngSpec with the header fields and the pixel rows set.
inline PngSpec png_spec(std::uint32_t width, std::uint32_t height, int bit_depth, int color_type,
                        std::vector<std::uint8_t> rows) {
  PngSpec spec;
  spec.width = width;
  spec.height = height;
  spec.bit_depth = bit_depth;
  spec.color_type = color_type;
  spec.rows = std::move(rows);
  return spec;
}

inline void png_put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

inline void png_chunk(std::vector<std::uint8_t>& out, const char* type,
                      const std::vector<std::uint8_t>& data) {
  png_put32(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  png_put32(out, png_crc32(out.data() + start, out.size() - start));
}

inline int png_channels(int color_type) {
  switch (color_type) {
    case 0: return 1;
    case 2: return 3;
    case 3: return 1;
    case 4: return 2;
    default: return 4;
  }
}

// Encodes `spec`. `rows` may hold fewer scanlines than the header claims (bomb headers).
inline std::vector<std::uint8_t> encode_png(const PngSpec& spec) {
  std::vector<std::uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<std::uint8_t> ihdr;
  png_put32(ihdr, spec.width);
  png_put32(ihdr, spec.height);
  ihdr.push_back(static_cast<std::uint8_t>(spec.bit_depth));
  ihdr.push_back(static_cast<std::uint8_t>(spec.color_type));
  ihdr.push_back(0);
  ihdr.push_back(0);
  ihdr.push_back(0);
  png_chunk(out, "IHDR", ihdr);
  if (!spec.plte.empty()) png_chunk(out, "PLTE", spec.plte);
  if (!spec.trns.empty()) png_chunk(out, "tRNS", spec.trns);

  // Filter byte 0 before each scanline.
  const std::size_t row_bytes =
      (static_cast<std::size_t>(spec.width) * png_channels(spec.color_type) * spec.bit_depth + 7) / 8;
  std::vector<std::uint8_t> raw;
  for (std::size_t off = 0; off + row_bytes <= spec.rows.size() && row_bytes > 0; off += row_bytes) {
    raw.push_back(0);
    raw.insert(raw.end(), spec.rows.begin() + off, spec.rows.begin() + off + row_bytes);
  }
  // zlib stream of stored blocks.
  std::vector<std::uint8_t> z = {0x78, 0x01};
  std::size_t pos = 0;
  do {
    const std::size_t n = std::min<std::size_t>(65535, raw.size() - pos);
    const bool last = pos + n == raw.size();
    z.push_back(last ? 1 : 0);
    z.push_back(static_cast<std::uint8_t>(n & 0xFF));
    z.push_back(static_cast<std::uint8_t>(n >> 8));
    z.push_back(static_cast<std::uint8_t>(~n & 0xFF));
    z.push_back(static_cast<std::uint8_t>((~n >> 8) & 0xFF));
    z.insert(z.end(), raw.begin() + pos, raw.begin() + pos + n);
    pos += n;
  } while (pos < raw.size());
  std::uint32_t a = 1, b = 0;
  for (std::uint8_t v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  png_put32(z, (b << 16) | a);
  for (std::size_t off = 0; off < z.size(); off += spec.idat_bytes)
    png_chunk(out, "IDAT",
              std::vector<std::uint8_t>(z.begin() + off,
                                        z.begin() + std::min(z.size(), off + spec.idat_bytes)));
  png_chunk(out, "IEND", {});
  return out;
}

inline std::string write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace blip::test
