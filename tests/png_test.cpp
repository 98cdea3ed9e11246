// core/png_io.h and core/plot.h: PNG round trips (8/16 bit, 1-4 channels, palette), bad files,
// chart and image-grid rendering.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "core/io.h"
#include "core/philox.h"
#include "core/plot.h"
#include "core/png_io.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

using test::error_of;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("fovea_png_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// Values k / maxv with random k, so that a round trip must reproduce them exactly.
Tensor quantized_image(int64_t C, int64_t H, int64_t W, int bits, uint64_t seed) {
  const uint32_t maxv = bits == 16 ? 65535u : 255u;
  std::vector<float> v(size_t(C * H * W));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = float(philox_u32(seed, 0, i) % (maxv + 1)) * (bits == 16 ? 1.0f / 65535.0f : 1.0f / 255.0f);
  return Tensor::from_vector(v, {C, H, W});
}

TEST(Png, RoundTripsEveryChannelCountAtBothDepths) {
  for (int bits : {8, 16})
    for (int64_t C : {1, 2, 3, 4}) {
      const Tensor img = quantized_image(C, 13, 17, bits, uint64_t(C * 100 + bits));
      const std::string path = temp_path("rt.png");
      write_png(path, img, bits);
      const PngImage back = read_png(path);
      ASSERT_EQ(back.pixels.shape(), img.shape()) << C << " channels, " << bits << " bits";
      EXPECT_EQ(back.bit_depth, bits);
      EXPECT_EQ(back.has_alpha, C == 2 || C == 4);
      EXPECT_EQ(back.pixels.to_vector<float>(), img.to_vector<float>()) << C << " channels, " << bits << " bits";
      std::filesystem::remove(path);
    }
}

TEST(Png, ClampsAndRoundsOnWrite) {
  const Tensor img = Tensor::from_vector<float>({-1.0f, 2.0f, NAN, 0.5f, 0.2f / 255.0f, 0.7f / 255.0f}, {2, 3});
  const PngImage back = decode_png(encode_png(img, 8), "mem");
  EXPECT_EQ(back.pixels.shape(), Shape({1, 2, 3}));
  EXPECT_EQ(back.pixels.to_vector<float>(),
            std::vector<float>({0.0f, 1.0f, 0.0f, 128.0f / 255.0f, 0.0f, 1.0f / 255.0f}));
}

TEST(Png, ExpandsPalettesWithAndWithoutTransparency) {
  for (bool alpha : {false, true}) {
    // A 4x2 palette image written by libpng's own simplified API (independent of our writer).
    png_image im{};
    im.version = PNG_IMAGE_VERSION;
    im.width = 4;
    im.height = 2;
    im.format = alpha ? PNG_FORMAT_RGBA_COLORMAP : PNG_FORMAT_RGB_COLORMAP;
    im.colormap_entries = 3;
    const unsigned char cmap_rgb[] = {255, 0, 0, 0, 255, 0, 10, 20, 30};
    const unsigned char cmap_rgba[] = {255, 0, 0, 255, 0, 255, 0, 128, 10, 20, 30, 0};
    const unsigned char idx[8] = {0, 1, 2, 0, 2, 2, 1, 0};
    png_alloc_size_t size = 0;
    ASSERT_TRUE(png_image_write_get_memory_size(im, size, 0, idx, 0, alpha ? cmap_rgba : cmap_rgb));
    std::string bytes(size, '\0');
    ASSERT_TRUE(png_image_write_to_memory(&im, bytes.data(), &size, 0, idx, 0, alpha ? cmap_rgba : cmap_rgb));
    bytes.resize(size);
    const PngImage p = decode_png(bytes, "palette");
    const int C = alpha ? 4 : 3;
    ASSERT_EQ(p.pixels.shape(), Shape({C, 2, 4}));
    EXPECT_EQ(p.has_alpha, alpha);
    const float* v = p.pixels.data<float>();
    const unsigned char* cmap = alpha ? cmap_rgba : cmap_rgb;
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 4; ++x)
        for (int c = 0; c < C; ++c)
          EXPECT_EQ(v[(c * 2 + y) * 4 + x], float(cmap[idx[y * 4 + x] * C + c]) * (1.0f / 255.0f))
              << x << "," << y << "," << c;
  }
}

TEST(Png, BadFilesNameTheFile) {
  const std::string path = temp_path("not.png");
  write_file_atomic(path, "GIF89a this is not a png file at all");
  EXPECT_NE(error_of([&] { read_png(path); }).find("'" + path + "': not a PNG file"), std::string::npos);
  std::filesystem::remove(path);
  EXPECT_NE(error_of([&] { read_png(path); }).find(path), std::string::npos);  // missing

  const std::string good = encode_png(quantized_image(3, 20, 20, 8, 1), 8);
  const std::string trunc = error_of([&] { decode_png(good.substr(0, good.size() / 2), "half.png"); });
  EXPECT_NE(trunc.find("PNG file 'half.png'"), std::string::npos) << trunc;
  std::string corrupt = good;
  corrupt[40] ^= 0x55;  // inside IHDR/IDAT: a CRC or data error
  EXPECT_NE(error_of([&] { decode_png(corrupt, "bad.png"); }).find("PNG file 'bad.png'"), std::string::npos);
  EXPECT_NE(error_of([&] { decode_png("", "empty.png"); }).find("not a PNG file"), std::string::npos);
}

TEST(Png, RefusesTensorsItCannotWrite) {
  EXPECT_NE(error_of([] { encode_png(Tensor::zeros({5, 2, 2}), 8); }).find("5 channels"), std::string::npos);
  EXPECT_NE(error_of([] { encode_png(Tensor::zeros({3, 2, 2}), 12); }).find("bit_depth"), std::string::npos);
  EXPECT_NE(error_of([] { encode_png(Tensor::zeros({3, 2, 2}, DType::int32), 8); }).find("float32"), std::string::npos);
  EXPECT_NE(error_of([] { encode_png(Tensor::zeros({3, 0, 2}), 8); }).find("rows and columns"), std::string::npos);
}

// ------------------------------------------------------------------ plot

float px(const Tensor& img, int c, int y, int x) {
  return img.data<float>()[(c * img.size(1) + y) * img.size(2) + x];
}

TEST(Plot, TextDrawsGlyphPixels) {
  Tensor img = Tensor::empty({3, 10, 20});
  std::fill(img.data<float>(), img.data<float>() + img.numel(), 1.0f);
  EXPECT_EQ(draw_text(img, 1, 1, "1", PlotColor{0, 0, 0}), 5);
  EXPECT_EQ(text_width("10", 2), 22);
  // '1': the stem is column 2 of the glyph, all 7 rows; the base row spans columns 1..3.
  for (int r = 0; r < 7; ++r) EXPECT_EQ(px(img, 0, 1 + r, 3), 0.0f) << r;
  EXPECT_EQ(px(img, 0, 7, 2), 0.0f);
  EXPECT_EQ(px(img, 0, 2, 5), 1.0f);
  EXPECT_EQ(px(img, 0, 0, 0), 1.0f);
  draw_text(img, 15, 5, "clipped at the edge", PlotColor{0, 0, 0});  // must not write out of bounds
}

TEST(Plot, CurvesLandWhereTheyShould) {
  PlotSeries flat{"flat", {0, 10}, {0.25, 0.25}, PlotColor{1, 0, 0}};
  PlotSeries rising{"rising", {0, 5, 10}, {0.0, 0.5, 1.0}, PlotColor{0, 0, 1}};
  PlotOptions opt;
  opt.width = 400;
  opt.height = 300;
  opt.x_label = "epoch";
  const Tensor img = render_curves("loss", {flat, rising}, opt);
  ASSERT_EQ(img.shape(), Shape({3, 300, 400}));
  // Pure red pixels exist on one row only (the flat line is horizontal), blue ones spread over many rows.
  std::set<int> red_rows, blue_rows;
  for (int y = 0; y < 300; ++y)
    for (int x = 0; x < 400; ++x) {
      if (px(img, 0, y, x) > 0.99f && px(img, 1, y, x) < 0.01f && px(img, 2, y, x) < 0.01f) red_rows.insert(y);
      if (px(img, 2, y, x) > 0.99f && px(img, 0, y, x) < 0.01f && px(img, 1, y, x) < 0.01f) blue_rows.insert(y);
    }
  ASSERT_FALSE(red_rows.empty());
  EXPECT_LE(red_rows.size(), 5u);  // the line (2 px) and the legend swatch (3 px)
  EXPECT_GT(blue_rows.size(), 100u);
  for (int64_t i = 0; i < img.numel(); ++i) ASSERT_TRUE(img.data<float>()[i] >= 0 && img.data<float>()[i] <= 1);
}

TEST(Plot, HandlesDegenerateAndLogData) {
  PlotOptions opt;
  opt.log_y = true;
  const std::vector<PlotSeries> s = {{"a", {1, 2, 3, 4}, {1.0, 0.1, NAN, 0.001}, plot_palette(0)},
                                     {"", {1}, {-5.0}, plot_palette(1)}};  // skipped on a log axis
  EXPECT_EQ(render_curves("log", s, opt).shape(), Shape({3, 500, 800}));
  EXPECT_EQ(render_curves("empty", {}).shape(), Shape({3, 500, 800}));
  EXPECT_EQ(render_curves("const", {{"c", {3, 3}, {2, 2}, plot_palette(2)}}).shape(), Shape({3, 500, 800}));
  EXPECT_NE(error_of([] {
              render_curves("bad", {{"b", {1, 2}, {1}, plot_palette(3)}});
            }).find("2 x values and 1 y"),
            std::string::npos);
  const std::string path = temp_path("curves.png");
  plot_curves(path, "Training", {{"train", {0, 1, 2}, {2.3, 1.0, 0.5}, plot_palette(0)}});
  EXPECT_EQ(read_png(path).pixels.shape(), Shape({3, 500, 800}));
  std::filesystem::remove(path);
}

TEST(Plot, ImageGridLayoutAndNormalisation) {
  // Three 2x3 tiles: grey ramps with different ranges, one RGB.
  std::vector<Tensor> tiles = {Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3}),
                               Tensor::from_vector<float>({-1, -1, -1, -1, -1, -1}, {1, 2, 3}),
                               Tensor::zeros({3, 2, 3})};
  tiles[2].data<float>()[6] = 1.0f;  // green channel, pixel (0,0)
  GridOptions g;
  g.columns = 2;
  g.border = 1;
  g.border_value = 0.25f;
  const Tensor grid = image_grid(tiles, g);
  ASSERT_EQ(grid.shape(), Shape({3, 2 * 3 + 1, 2 * 4 + 1}));
  EXPECT_EQ(px(grid, 0, 0, 0), 0.25f);       // border
  EXPECT_EQ(px(grid, 0, 1, 1), 0.0f);        // tile 0 min
  EXPECT_EQ(px(grid, 1, 2, 3), 1.0f);        // tile 0 max, grey in every channel
  EXPECT_FLOAT_EQ(px(grid, 2, 1, 2), 0.2f);  // 1 / 5
  EXPECT_EQ(px(grid, 0, 1, 5), 0.5f);        // constant tile -> mid grey
  EXPECT_EQ(px(grid, 1, 4, 1), 1.0f);        // tile 2 (row 1, col 0) green pixel
  EXPECT_EQ(px(grid, 0, 4, 1), 0.0f);
  EXPECT_EQ(px(grid, 0, 4, 5), 0.25f);  // empty cell stays border
  g.norm = TileNorm::per_tile_signed;
  g.scale = 2;
  const Tensor s = image_grid(std::vector<Tensor>{Tensor::from_vector<float>({-2, 1}, {1, 2})}, g);
  ASSERT_EQ(s.shape(), Shape({1, 4, 6}));
  EXPECT_EQ(px(s, 0, 1, 1), 0.0f);
  EXPECT_EQ(px(s, 0, 2, 2), 0.0f);
  EXPECT_EQ(px(s, 0, 1, 3), 0.75f);
  // A conv weight [K, C, R, S] with C = 2 becomes K*C grey tiles.
  EXPECT_EQ(image_grid(Tensor::zeros({4, 2, 3, 3}), GridOptions{}).shape(), Shape({1, 3 * 4 + 1, 3 * 4 + 1}));
  EXPECT_NE(error_of([] {
              image_grid(std::vector<Tensor>{Tensor::zeros({2, 2}), Tensor::zeros({3, 3})});
            }).find("tile 1"),
            std::string::npos);
}

}  // namespace
}  // namespace fovea
