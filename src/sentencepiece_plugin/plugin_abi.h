// C interface of the SentencePiece plugin (libblip_sentencepiece.so).
//
// Why a plugin: Debian's libsentencepiece bundles its own copy of protobuf-lite and exports its
// symbols; a process that also loads libtorch (which links the full libprotobuf) crashes in the
// static initialisers. The plugin is loaded with dlmopen(LM_ID_NEWLM) into a link-map namespace of
// its own, so sentencepiece binds to its own protobuf (RTLD_DEEPBIND alone was not enough: the
// trainer's logging then used an uninitialised std::cerr).
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BLIP_SPM_ABI_VERSION 1
#define BLIP_SPM_API __attribute__((visibility("default")))

typedef struct blip_spm blip_spm;

BLIP_SPM_API int blip_spm_abi_version(void);
// Loads a .model file; NULL on failure with the reason in err.
BLIP_SPM_API blip_spm* blip_spm_load(const char* path, char* err, size_t err_size);
BLIP_SPM_API void blip_spm_free(blip_spm* model);
BLIP_SPM_API int blip_spm_piece_size(const blip_spm* model);
BLIP_SPM_API int blip_spm_piece_to_id(const blip_spm* model, const char* piece, size_t len);
// The piece of `id`; the pointer stays valid as long as the model.
BLIP_SPM_API const char* blip_spm_id_to_piece(const blip_spm* model, int id, size_t* len);
BLIP_SPM_API int blip_spm_unk_id(const blip_spm* model);
// Encodes text into ids; *ids points into a buffer owned by the model, valid until the next call.
// Returns the number of ids, or -1 with the reason in err.
BLIP_SPM_API int blip_spm_encode(blip_spm* model, const char* text, size_t len, const int** ids, char* err,
                    size_t err_size);
// Runs the trainer with a command line such as "--input=f --model_prefix=m --vocab_size=100".
BLIP_SPM_API int blip_spm_train(const char* args, char* err, size_t err_size);

#ifdef __cplusplus
}
#endif
