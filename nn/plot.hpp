// Training curves as an SVG image (any browser opens it): two panels, loss
// and accuracy per epoch, training in blue and validation in orange, with
// axes, ticks and a legend. Written by hand: SVG is plain text.
#pragma once

#include <filesystem>
#include <string>

#include "nn/history.hpp"

namespace petal::nn {

std::string training_curves_svg(const History& history, const std::string& title = "");
// Writes training_curves_svg() atomically.
void write_training_curves(const History& history, const std::filesystem::path& path, const std::string& title = "");

}  // namespace petal::nn
