#include "text/sentencepiece_plugin.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "blip/error.h"
#include "text/vocab_limits.h"
#include "sentencepiece_plugin/plugin_abi.h"

namespace fs = std::filesystem;

namespace blip::text {
namespace {

constexpr const char* kPluginName = "libblip_sentencepiece.so";
constexpr size_t kErrorSize = 512;

// The plugin's entry points, resolved once per process.
struct PluginApi {
  decltype(&blip_spm_load) load = nullptr;
  decltype(&blip_spm_free) free = nullptr;
  decltype(&blip_spm_piece_size) piece_size = nullptr;
  decltype(&blip_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&blip_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&blip_spm_unk_id) unk_id = nullptr;
  decltype(&blip_spm_encode) encode = nullptr;
  decltype(&blip_spm_train) train = nullptr;
};

template <typename F>
void resolve(void* lib, const char* name, F& fn, const std::string& path) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (fn == nullptr) fail(path, std::string("SentencePiece plugin lacks symbol ") + name);
}

const PluginApi& plugin() {
  static std::once_flag once;
  static PluginApi api;
  static std::string load_error;
  std::call_once(once, [] {
    std::string tried;
    for (const auto& candidate : sentencepiece_plugin_candidates()) {
      // A link-map namespace of its own: sentencepiece binds to its bundled protobuf, not
      // libtorch's, and to its own libstdc++ iostreams. (RTLD_DEEPBIND isolated protobuf but made
      // sentencepiece's logging write to an uninitialised std::cerr, a segfault in Train().)
      void* lib = dlmopen(LM_ID_NEWLM, candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib == nullptr) {
        const char* why = dlerror();
        tried += "\n  " + candidate + ": " + (why ? why : "not loadable");
        continue;
      }
      auto version = reinterpret_cast<decltype(&blip_spm_abi_version)>(dlsym(lib, "blip_spm_abi_version"));
      if (version == nullptr || version() != BLIP_SPM_ABI_VERSION) {
        tried += "\n  " + candidate + ": incompatible plugin version";
        continue;
      }
      try {
        resolve(lib, "blip_spm_load", api.load, candidate);
        resolve(lib, "blip_spm_free", api.free, candidate);
        resolve(lib, "blip_spm_piece_size", api.piece_size, candidate);
        resolve(lib, "blip_spm_piece_to_id", api.piece_to_id, candidate);
        resolve(lib, "blip_spm_id_to_piece", api.id_to_piece, candidate);
        resolve(lib, "blip_spm_unk_id", api.unk_id, candidate);
        resolve(lib, "blip_spm_encode", api.encode, candidate);
        resolve(lib, "blip_spm_train", api.train, candidate);
        return;
      } catch (const Error& e) {
        api = PluginApi{};
        tried += std::string("\n  ") + e.what();
      }
    }
    load_error = "cannot load the SentencePiece plugin (" + std::string(kPluginName) +
                 "; set BLIP_SENTENCEPIECE_PLUGIN to its path). Tried:" + tried;
  });
  if (api.load == nullptr) throw Error(load_error);
  return api;
}

}  // namespace

std::vector<std::string> sentencepiece_plugin_candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("BLIP_SENTENCEPIECE_PLUGIN"); env && *env) out.emplace_back(env);
  // Next to the executable first (an installed tool finds its own plugin, a build-tree tool the
  // build's), then the install prefix; the build directory only last, so that an installed binary
  // never loads a stale plugin from the tree it was built in.
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path() / ".." / "lib" / "blip" / kPluginName).lexically_normal().string());
    out.push_back((exe.parent_path() / ".." / "lib" / kPluginName).lexically_normal().string());
  }
#ifdef BLIP_PLUGIN_INSTALL_DIR
  out.push_back((fs::path(BLIP_PLUGIN_INSTALL_DIR) / kPluginName).string());
#endif
#ifdef BLIP_PLUGIN_BUILD_DIR
  out.push_back((fs::path(BLIP_PLUGIN_BUILD_DIR) / kPluginName).string());
#endif
  out.emplace_back(kPluginName);  // the dynamic linker's search path
  return out;
}

struct SentencePieceModel::Handle {
  blip_spm* model = nullptr;
};

SentencePieceModel::SentencePieceModel(const std::string& model_path)
    : path_(model_path), handle_(std::make_unique<Handle>()) {
  files::require_regular_file(model_path, kMaxVocabularyBytes, "SentencePiece model file");
  const auto& api = plugin();
  char err[kErrorSize] = {0};
  handle_->model = api.load(model_path.c_str(), err, sizeof err);
  if (handle_->model == nullptr) fail(model_path, std::string("cannot load SentencePiece model: ") + err);
}

SentencePieceModel::~SentencePieceModel() {
  if (handle_ && handle_->model) plugin().free(handle_->model);
}

int SentencePieceModel::piece_size() const { return plugin().piece_size(handle_->model); }

int SentencePieceModel::piece_to_id(const std::string& piece) const {
  return plugin().piece_to_id(handle_->model, piece.data(), piece.size());
}

std::string SentencePieceModel::id_to_piece(int id) const {
  size_t len = 0;
  const char* p = plugin().id_to_piece(handle_->model, id, &len);
  return std::string(p, len);
}

int SentencePieceModel::unk_id() const { return plugin().unk_id(handle_->model); }

std::vector<int> SentencePieceModel::encode(const std::string& text) const {
  const int* ids = nullptr;
  char err[kErrorSize] = {0};
  const int n = plugin().encode(handle_->model, text.data(), text.size(), &ids, err, sizeof err);
  if (n < 0) fail(path_, std::string("SentencePiece encoding failed: ") + err);
  return std::vector<int>(ids, ids + n);
}

void SentencePieceModel::train(const std::string& args) {
  char err[kErrorSize] = {0};
  if (plugin().train(args.c_str(), err, sizeof err) != 0)
    fail("sentencepiece trainer", std::string("training failed: ") + err);
}

}  // namespace blip::text
