// Loads the SentencePiece plugin (libblip_sentencepiece.so) at run time; see
// src/sentencepiece_plugin/plugin_abi.h for why sentencepiece is not linked directly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace blip::text {

class SentencePieceModel {
 public:
  // Loads a .model file through the plugin; blip::Error naming the file on failure.
  explicit SentencePieceModel(const std::string& model_path);
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  int piece_size() const;
  int piece_to_id(const std::string& piece) const;  // unk_id() when absent
  std::string id_to_piece(int id) const;
  int unk_id() const;
  std::vector<int> encode(const std::string& text) const;

  // Trains a model (sentencepiece_trainer command line); blip::Error on failure.
  static void train(const std::string& args);

 private:
  std::string path_;
  struct Handle;
  std::unique_ptr<Handle> handle_;
};

// Where the plugin is looked for, in order: $BLIP_SENTENCEPIECE_PLUGIN, the install tree relative
// to the running program (../lib/blip, ../lib), the configured install libdir, the build tree.
std::vector<std::string> sentencepiece_plugin_candidates();

}  // namespace blip::text
