#include "common/fixtures.h"

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <vector>

namespace fs = std::filesystem;

namespace blip::test {

std::string fixtures_root() {
  if (const char* env = std::getenv("BLIP_FIXTURES_DIR"); env && *env) return env;
  return BLIP_DEFAULT_FIXTURES_DIR;
}

std::string blip_ref_dir() { return (fs::path(fixtures_root()) / "blip_ref").string(); }

bool fixtures_available() {
  const fs::path root(fixtures_root());
  return fs::is_directory(root / "blip_ref") && fs::exists(root / "bert-base-uncased-vocab.txt");
}

namespace {
std::vector<fs::path>& temp_dirs() {
  static std::vector<fs::path> dirs;
  return dirs;
}
void remove_temp_dirs() {
  std::error_code ec;
  for (const auto& d : temp_dirs()) fs::remove_all(d, ec);
}
}  // namespace

std::string temp_dir() {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(remove_temp_dirs); });
  std::random_device rd;
  fs::path dir;
  do {
    dir = fs::temp_directory_path() / ("blip_test_" + std::to_string(rd()));
  } while (fs::exists(dir));
  fs::create_directories(dir);
  temp_dirs().push_back(dir);
  return dir.string();
}

}  // namespace blip::test
