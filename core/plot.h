// Pictures without a plotting library: line charts of training curves and grids of images
// (filters, activations, samples), rendered into float [C,H,W] tensors and written as PNG.
// Text uses a built-in 5x7 bitmap font (printable ASCII).
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace fovea {

struct PlotColor {
  float r = 0, g = 0, b = 0;  // in [0,1]
};
// A fixed palette of distinguishable colours (cycles after 10).
PlotColor plot_palette(int i);

struct PlotSeries {
  std::string label;         // shown in the legend (empty: no legend entry)
  std::vector<double> x, y;  // same length; non-finite points break the line
  PlotColor color = plot_palette(0);
};

struct PlotOptions {
  int width = 800, height = 500;  // pixels, at least 200 x 150
  std::string x_label, y_label;
  bool log_y = false;       // logarithmic y axis (non-positive values are skipped)
  float line_width = 2.0f;  // pixels
};

// The chart as float [3,H,W] in [0,1]: title, axes with "nice" ticks (1, 2, 5 x 10^k) and their
// labels, light grid lines, one anti-aliased polyline per series, a legend in the top-right corner.
Tensor render_curves(const std::string& title, const std::vector<PlotSeries>& series, const PlotOptions& options = {});
// The same written as an 8-bit RGB PNG (atomically).
void plot_curves(const std::string& path, const std::string& title, const std::vector<PlotSeries>& series,
                 const PlotOptions& options = {});

// Draws `text` with its top-left corner at (x, y) into a float [3,H,W] host image, clipped at the
// edges; each glyph is 5x7 pixels times `scale`, advancing 6 x scale. Returns the width drawn.
int draw_text(Tensor& image, int x, int y, const std::string& text, PlotColor color, int scale = 1);
int text_width(const std::string& text, int scale = 1);

enum class TileNorm {
  clamp,            // values as they are, clamped to [0,1]
  per_tile,         // each tile's min..max mapped to 0..1 (a constant tile becomes 0.5)
  per_tile_signed,  // each tile's v / (2 max|v|) + 0.5: zero is mid-grey (conv filters)
  global,           // min..max over all tiles mapped to 0..1
};

struct GridOptions {
  int columns = 0;            // 0: ceil(sqrt(K))
  int border = 1;             // pixels between tiles and around the grid
  float border_value = 1.0f;  // grey level of the border
  int scale = 1;              // nearest-neighbour magnification of each tile (small filters)
  TileNorm norm = TileNorm::per_tile;
};

// Tiles K images, each [H,W], [1,H,W] or [3,H,W] (float32, host, all the same H and W), row by row.
// The result is float [3, rows*(H*scale+border)+border, cols*(W*scale+border)+border] when any tile
// has 3 channels (grey tiles are repeated), else [1, ...].
Tensor image_grid(const std::vector<Tensor>& tiles, const GridOptions& options = {});
// A batch [K,H,W] or [K,C,H,W] (C = 1 or 3) as K tiles; any other C shows each channel as a tile.
Tensor image_grid(const Tensor& batch, const GridOptions& options = {});

}  // namespace fovea
