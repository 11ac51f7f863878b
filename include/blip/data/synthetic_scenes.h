// A synthetic image-text retrieval dataset in BLIP's file formats, for demos and tests that must
// run without downloads: each image shows `count` copies of one shape (circle, square, triangle,
// star, cross) in one colour and size, grouped around the centre of a black, grey or white
// background; each image gets several templated captions that all name every attribute ("two
// large red circles on a black background", "on a gray background you can see a small green
// star", ...).
//
// Layout written under the output folder:
//   images/{train,val,test}/NNNNNN.png
//   annotation/retrieval_train.json  [{"image", "caption", "image_id"}]  one entry per caption
//   annotation/retrieval_{val,test}.json  [{"image", "caption": [...]}]  one entry per image
//   captions.txt                     every train caption, one per line (tokenizer training)
// i.e. BLIP's coco_karpathy_{train,val,test}.json formats under the names dataset "custom" reads
// (retrieval_dataset.h, train_dataset.h); "image" paths are relative to the output folder (the
// image_root).
//
// Val and test images each have their own attribute combination (within their split), so no two
// of them share a caption: text->image recall@1 can reach 100%. Beyond that, the first
// scene_tuples() of them also differ in colour, size, count or background, not in shape alone
// (shape is what a small model trained for minutes learns last). Train images cycle through every
// combination in shuffled order. Everything is a function of the seed: each split, and each image
// within it, has its own random stream, so a split does not change when another split's size
// does. Captions are already in pre_caption() form (lower case, no punctuation).
//
// The attributes survive BLIP's training transform (train_transform.h): no left/right (it flips),
// no position (RandomResizedCrop keeps as little as half the area, so shapes stay near the
// centre), and small and large differ by more than the crop's largest zoom (about 1.6x).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blip/image/image_u8.h"

namespace blip::data {

// The attributes of one scene, as indices into the tables of synthetic_scenes.cpp.
struct SceneSpec {
  int shape = 0;       // circle, square, triangle, star, cross
  int colour = 0;      // red, green, blue, yellow, purple, orange
  int size = 0;        // small, large
  int count = 1;       // 1 .. kSceneMaxCount
  int background = 0;  // black, grey, white

  bool operator==(const SceneSpec& o) const {
    return shape == o.shape && colour == o.colour && size == o.size && count == o.count &&
           background == o.background;
  }
};

inline constexpr int kSceneMaxCount = 3;

// The number of distinct SceneSpecs (the largest val or test split), and the spec of number
// `index` in [0, scene_combinations()).
std::int64_t scene_combinations();
// The number of distinct (colour, size, count, background) tuples.
std::int64_t scene_tuples();
SceneSpec scene_from_index(std::int64_t index);

// The canonical caption of a spec: "two large red circles on a black background".
std::string scene_name(const SceneSpec& spec);

struct SyntheticScenesOptions {
  std::int64_t train = 2000;  // images per split
  std::int64_t val = 100;
  std::int64_t test = 200;
  int image_size = 64;        // square images, this many pixels a side (at least 32)
  int captions_per_image = 5; // as COCO has (at most scene_caption_templates())
  std::uint64_t seed = 0;
};

// How many different caption templates there are (the most captions an image can get).
int scene_caption_templates();

struct SyntheticScene {
  std::string image;                  // "images/<split>/NNNNNN.png"
  SceneSpec spec;
  std::uint64_t image_seed = 0;       // render_scene's seed for this image
  std::vector<std::string> captions;  // captions_per_image distinct captions
};

// The scenes of one split ("train", "val" or "test"), without drawing them. Throws blip::Error
// for an unknown split, bad options, or a val/test size above scene_combinations().
std::vector<SyntheticScene> make_scene_split(const std::string& split, std::int64_t count,
                                             const SyntheticScenesOptions& options);

// Draws a scene (anti-aliased OpenCV drawing); `image_seed` sets the jitter of positions, sizes,
// colours and background. Needs BLIP_WITH_OPENCV (else blip::Error).
image::ImageU8 render_scene(const SceneSpec& spec, int image_size, std::uint64_t image_seed);

struct SyntheticScenesSummary {
  std::int64_t train_images = 0, val_images = 0, test_images = 0;
  std::int64_t train_captions = 0, val_captions = 0, test_captions = 0;
};

// Writes the whole dataset (layout above) under `out_dir`, creating folders as needed and
// overwriting files of the same names. Throws blip::Error naming the file that could not be
// written, or for bad options.
SyntheticScenesSummary write_synthetic_scenes(const std::string& out_dir,
                                              const SyntheticScenesOptions& options);

}  // namespace blip::data
