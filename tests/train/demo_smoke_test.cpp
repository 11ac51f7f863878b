// The README demo's pipeline, shortened for CI: blip_demo_data writes a small synthetic set,
// spm_train (Debian's sentencepiece) trains the tokenizer as scripts/demo.sh does, and blip_train
// runs a few steps of the demo config from scratch, evaluating and saving as at an epoch's end.
// Needs no fixtures: this is what a user's machine runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "blip/io/checkpoint.h"
#include "common/fixtures.h"
#include "common/run_command.h"

namespace {

namespace fs = std::filesystem;
using blip::test::quote;
using blip::test::run_command;

std::string tool(const std::string& name) { return std::string(BLIP_BINARY_DIR) + "/tools/" + name; }

// The spm_train line of scripts/demo.sh (kept in step with it: same special-token ids).
std::string spm_command(const std::string& captions, const std::string& prefix) {
  return "spm_train --input=" + quote(captions) + " --model_prefix=" + quote(prefix) +
         " --model_type=bpe --vocab_size=160 --character_coverage=1.0 --pad_id=0 --pad_piece='[PAD]'"
         " --unk_id=1 --unk_piece='[UNK]' --bos_id=2 --bos_piece='[CLS]' --eos_id=3 --eos_piece='[SEP]'"
         " --user_defined_symbols='[MASK],[DEC],[ENC]' --num_threads=2";
}

TEST(DemoSmoke, GeneratorTokenizerAndAFewTrainingSteps) {
  for (const char* t : {"blip_demo_data", "blip_train"})
    if (!fs::exists(tool(t))) GTEST_SKIP() << tool(t) << " not built";
  if (run_command("command -v spm_train").exit_code != 0)
    GTEST_SKIP() << "spm_train not installed (apt install sentencepiece; scripts/install_deps.sh does)";
  const std::string dir = blip::test::temp_dir();
  const std::string data = dir + "/data";

  auto r = run_command(tool("blip_demo_data") + " --out " + quote(data) + " --train 64 --val 8 --test 8 --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"annotation/retrieval_train.json", "annotation/retrieval_val.json",
                        "annotation/retrieval_test.json", "captions.txt"})
    EXPECT_TRUE(fs::is_regular_file(data + "/" + f)) << f;

  r = run_command(spm_command(data + "/captions.txt", dir + "/spm"));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  const std::string out = dir + "/out";
  const std::string config = std::string(BLIP_SOURCE_DIR) + "/configs/demo/retrieval_demo.yaml";
  r = run_command(tool("blip_train") + " --config " + quote(config) + " --output_dir " + quote(out) +
                  " --set image_root=" + quote(data) + " --set ann_root=" + quote(data + "/annotation") +
                  " --set tokenizer=" + quote(dir + "/spm.model") +
                  " --batch_size_train 8 --max_steps 3 --threads 2 --workers 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("done: 3 steps"), std::string::npos) << r.output;
  for (const char* f : {"log.txt", "checkpoint_best.pth", "checkpoint_last.pth", "report.html", "config.yaml"})
    EXPECT_TRUE(fs::is_regular_file(out + "/" + f)) << f;
  const auto ckpt = blip::io::load_pth(out + "/checkpoint_last.pth");
  EXPECT_GT(ckpt.model.size(), 100u);
}

}  // namespace
