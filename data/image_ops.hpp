// Geometric and photometric image operations for preprocessing and
// augmentation. All work on uint8 HWC images of any channel count.
#pragma once

#include "core/random.hpp"
#include "data/image.hpp"

namespace petal::data {

// Bilinear resize with half-pixel centres and no antialiasing, like TF2's
// tf.image.resize(method="bilinear") and PyTorch's align_corners=False;
// results are rounded to the nearest integer.
Image resize_bilinear(const Image& image, int out_height, int out_width);
void resize_bilinear_into(const Image& image, int out_height, int out_width, Image& out);

// The rectangle [top, top + height) x [left, left + width); throws
// IndexError when it does not lie inside the image.
Image crop(const Image& image, int top, int left, int height, int width);
// Crop at offsets ((H - h) / 2, (W - w) / 2).
Image center_crop(const Image& image, int height, int width);
// Crop at a uniformly random position.
Image random_crop(const Image& image, int height, int width, Generator& gen);

void flip_horizontal(Image& image);
// Flips with probability 1/2; returns whether it flipped.
bool random_flip_horizontal(Image& image, Generator& gen);

// Adds delta (in [0, 1] pixel units, so 0.1 = 25.5 levels) to every value,
// saturating, like tf.image.adjust_brightness on [0, 1] images.
void adjust_brightness(Image& image, float delta);
// (x - mean) * factor + mean with the mean taken per channel over the image,
// saturating, like tf.image.adjust_contrast.
void adjust_contrast(Image& image, float factor);
// delta uniform in [-max_delta, max_delta].
void random_brightness(Image& image, float max_delta, Generator& gen);
// factor uniform in [lower, upper].
void random_contrast(Image& image, float lower, float upper, Generator& gen);

// Scales the image so that it just covers height x width, keeping the aspect
// ratio (the other side becomes floor(side * scale)), then center-crops to
// height x width: how the flowers shards were made from the photos.
Image resize_short_side_center_crop(const Image& image, int height, int width);

}  // namespace petal::data
