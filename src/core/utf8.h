// The one strict UTF-8 codec of libblip (internal): pickled strings (io), captions and
// vocabularies (text) all go through the same decoder, so they agree on what is well-formed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace blip::utf8 {

// Why a byte sequence is not UTF-8 (Unicode 15, table 3-7 "well-formed byte sequences").
enum class Problem {
  kNone,
  kUnexpectedContinuation,  // 0x80..0xBF where a sequence should start
  kOverlong,                // 0xC0, 0xC1, or E0/F0 followed by a too-small second byte
  kInvalidByte,             // 0xF5..0xFF
  kSurrogate,               // ED A0..BF: U+D800..U+DFFF
  kAboveMax,                // F4 90..BF: above U+10FFFF
  kTruncated,               // a continuation byte is missing
};

// Short description of a problem, e.g. "overlong encoding" (empty for kNone).
const char* describe(Problem problem);

// The sequence starting at a byte offset: its length and code point when valid.
struct Sequence {
  std::size_t length = 0;  // 1..4 when valid, 0 otherwise
  char32_t code_point = 0;
  Problem problem = Problem::kNone;
  bool valid() const { return problem == Problem::kNone; }
};

// Decodes the sequence at bytes[offset] (offset < bytes.size()). Rejects overlong forms,
// surrogates, code points above U+10FFFF, truncated sequences and lone continuation bytes.
Sequence next(std::string_view bytes, std::size_t offset);

// Where and why decoding stopped.
struct Failure {
  std::size_t offset = 0;
  Problem problem = Problem::kNone;
};

// "invalid UTF-8 at byte offset N (<kind>)".
std::string describe(const Failure& failure);

// Decodes `bytes` into `out`; returns the first ill-formed sequence, or nullopt when all is valid.
std::optional<Failure> try_decode(std::string_view bytes, std::u32string& out);

// Decodes `bytes`; an ill-formed sequence throws blip::Error
// "<what>: invalid UTF-8 at byte offset N (<kind>)".
std::u32string decode(std::string_view bytes, const std::string& what);

bool is_valid(std::string_view bytes);

// Copies `bytes`, replacing each byte that does not start a valid sequence with U+FFFD.
std::string sanitize(std::string_view bytes);

// Encodes code points (assumed valid scalar values) as UTF-8.
void append(std::string& out, char32_t code_point);
std::string encode(std::u32string_view code_points);

// Latin-1 bytes of a UTF-8 string whose code points are all <= U+00FF; nullopt otherwise
// (pickle protocol 2 carries bytes as a latin-1 str).
std::optional<std::string> to_latin1(std::string_view bytes);
std::string from_latin1(std::string_view latin1);

}  // namespace blip::utf8
