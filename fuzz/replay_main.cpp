// A plain main() for the fuzz targets, for builds without libFuzzer: `fuzz_replay <target> <input
// file or folder>...` runs the target's entry point (LLVMFuzzerTestOneInput, renamed
// <target>_one_input at compile time so that all targets share this one binary) once on every file
// named (folders: every regular file below them, in name order), so the seed corpora and crash
// reproducers in fuzz/corpus run as regression tests with any compiler. A bug shows as a crash or
// an abort; blip::Errors are the targets' business.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define X(name) extern "C" int name##_one_input(const std::uint8_t* data, std::size_t size);
BLIP_REPLAY_TARGETS
#undef X

namespace {

struct Target {
  const char* name;
  int (*one_input)(const std::uint8_t* data, std::size_t size);
};

const Target kTargets[] = {
#define X(name) {#name, name##_one_input},
    BLIP_REPLAY_TARGETS
#undef X
};

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const Target* target = nullptr;
  for (const auto& t : kTargets)
    if (argc > 1 && std::string(argv[1]) == t.name) target = &t;
  if (target == nullptr) {
    std::string names;
    for (const auto& t : kTargets) names += std::string(names.empty() ? "" : ", ") + t.name;
    std::fprintf(stderr, "usage: %s <target> <input file or folder>...; targets: %s\n", argv[0], names.c_str());
    return 1;
  }
  std::vector<fs::path> files;
  for (int i = 2; i < argc; ++i) {
    const fs::path arg(argv[i]);
    if (fs::is_directory(arg)) {
      for (const auto& e : fs::recursive_directory_iterator(arg))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (fs::is_regular_file(arg)) {
      files.push_back(arg);
    } else {
      std::fprintf(stderr, "%s: not a file or folder\n", argv[i]);
      return 1;
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s <input file or folder>...: no inputs found\n", argv[0]);
    return 1;
  }
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "%s: cannot read\n", path.c_str());
      return 1;
    }
    std::fprintf(stderr, "running %s (%zu bytes)\n", path.c_str(), bytes.size());
    target->one_input(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("%zu inputs ran\n", files.size());
  return 0;
}
