// Replacing a small file all at once, so that a reader (or a crash) sees either the old contents
// or the new ones, never a half-written file: logs, reports, run metadata.
//
// The data goes to a fresh temporary file in the target's directory, created exclusively
// (O_CREAT | O_EXCL | O_NOFOLLOW, a name no other writer uses), is fsynced, and is renamed over
// the target; the directory is then fsynced so the rename itself survives a crash. A target that
// exists but is not a regular file (a directory, a symlink, a FIFO ...) is refused rather than
// replaced. On any failure the temporary file is removed and blip::Error names the target.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace blip::io {

// Atomically replaces (or creates) `path` with `data`. An existing target keeps its permission
// bits; a new one gets 0644 minus the umask. The parent directory must exist.
void write_file_atomic(const std::string& path, std::string_view data);

// The whole contents of a regular file, or "" when it does not exist. Other failures (not a
// regular file, unreadable, larger than max_bytes) throw blip::Error naming the path.
std::string read_file_if_exists(const std::string& path, std::size_t max_bytes = std::size_t{1} << 30);

// Creates `dir` (with its parents) when missing and checks that files can be created in it, by
// creating and removing a probe file; run it before long work whose results go there. Throws
// blip::Error naming `dir`: "exists and is not a directory", "cannot create the directory: ...",
// "is not writable: ...".
void ensure_writable_directory(const std::string& dir);

}  // namespace blip::io
