// The SentencePiece plugin: a thin C wrapper around libsentencepiece (see plugin_abi.h for why).
#include "plugin_abi.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <string>
#include <vector>

struct blip_spm {
  sentencepiece::SentencePieceProcessor processor;
  std::vector<std::string> pieces;  // id -> piece, so returned pointers stay valid
  std::vector<int> ids;             // last encode() result
};

namespace {
void set_error(char* err, size_t size, const std::string& message) {
  if (err == nullptr || size == 0) return;
  std::strncpy(err, message.c_str(), size - 1);
  err[size - 1] = '\0';
}
}  // namespace

extern "C" {

int blip_spm_abi_version(void) { return BLIP_SPM_ABI_VERSION; }

blip_spm* blip_spm_load(const char* path, char* err, size_t err_size) {
  try {
    auto model = std::make_unique<blip_spm>();
    const auto status = model->processor.Load(path);
    if (!status.ok()) {
      set_error(err, err_size, status.ToString());
      return nullptr;
    }
    const int n = model->processor.GetPieceSize();
    model->pieces.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) model->pieces.push_back(model->processor.IdToPiece(i));
    return model.release();
  } catch (const std::exception& e) {
    set_error(err, err_size, e.what());
    return nullptr;
  }
}

void blip_spm_free(blip_spm* model) { delete model; }

int blip_spm_piece_size(const blip_spm* model) { return static_cast<int>(model->pieces.size()); }

int blip_spm_piece_to_id(const blip_spm* model, const char* piece, size_t len) {
  return model->processor.PieceToId(std::string(piece, len));
}

const char* blip_spm_id_to_piece(const blip_spm* model, int id, size_t* len) {
  if (id < 0 || static_cast<size_t>(id) >= model->pieces.size()) {
    *len = 0;
    return "";
  }
  *len = model->pieces[static_cast<size_t>(id)].size();
  return model->pieces[static_cast<size_t>(id)].c_str();
}

int blip_spm_unk_id(const blip_spm* model) { return model->processor.unk_id(); }

int blip_spm_encode(blip_spm* model, const char* text, size_t len, const int** ids, char* err,
                    size_t err_size) {
  try {
    model->ids.clear();
    const auto status = model->processor.Encode(std::string(text, len), &model->ids);
    if (!status.ok()) {
      set_error(err, err_size, status.ToString());
      return -1;
    }
    *ids = model->ids.data();
    return static_cast<int>(model->ids.size());
  } catch (const std::exception& e) {
    set_error(err, err_size, e.what());
    return -1;
  }
}

int blip_spm_train(const char* args, char* err, size_t err_size) {
  try {
    const auto status = sentencepiece::SentencePieceTrainer::Train(args);
    if (!status.ok()) {
      set_error(err, err_size, status.ToString());
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_size, e.what());
    return 1;
  }
}

}  // extern "C"
