// Reading the small input files users name (captions, vocabularies, configs) safely: only regular
// files are read (a directory, FIFO or device such as /dev/zero would fail obscurely, block or
// never end), and never more than a cap, so a wrong path cannot exhaust memory.
// Every failure throws blip::Error "<path>: <reason>", the reason naming what the file was for.
#pragma once

#include <cstdint>
#include <string>

namespace blip::files {

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

// Opens `path` read-only (never blocking on a FIFO) and returns the descriptor, which the caller
// closes; *size receives the file size. Refuses anything but a regular file: "<path>: is a
// directory, not a <what>", "<path>: is not a regular file (a character device); expected a
// <what>", "<path>: <what> not found".
int open_regular_file(const std::string& path, const std::string& what, std::uint64_t* size);

// Checks that `path` is a regular file of at most max_bytes (same messages as above, and
// "<path>: is larger than N MiB, the limit for a <what>").
void require_regular_file(const std::string& path, std::uint64_t max_bytes, const std::string& what);

// The whole contents of a regular file of at most max_bytes (bounded even if it grows meanwhile).
std::string read_regular_file(const std::string& path, std::uint64_t max_bytes, const std::string& what);

// "a directory", "a character device", "a FIFO", ... for a st_mode (a description of the type).
std::string file_type_name(unsigned mode);

// "64 MiB" when a whole number of MiB, else "<n> bytes".
std::string size_text(std::uint64_t bytes);

}  // namespace blip::files
