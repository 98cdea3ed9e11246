// layers/data/image.h, core/jpeg_io.h and core/png_io.h (8-bit decoding): JPEG and PNG decoding and
// torchvision's ImageNet evaluation transform against PIL 9 + torchvision 0.14 on the same files
// (written by tests/image_fixtures.py when /usr/bin/python3 has them), known answers for each step,
// and bad files (truncated JPEG, PNG and JPEG decompression bombs, non-images), each an error
// naming the file.
#include <gtest/gtest.h>

// jpeglib.h needs FILE and size_t first
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <jpeglib.h>
#include <zlib.h>

#include "core/io.h"
#include "core/jpeg_io.h"
#include "core/npy.h"
#include "core/png_io.h"
#include "layers/data/data.h"
#include "layers/data/image.h"
#include "layers/data/imagenet_classes.h"
#include "layers/data/loader.h"
#include "tests/python_util.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

namespace fs = std::filesystem;
using data::center_crop;
using data::resize_bilinear_pil;
using test::throws_error;

struct Fixtures {
  std::string dir, skip;
  nlohmann::json manifest;  // null when the generator failed (a failure, not a skip)
};

const Fixtures& fixtures() {
  static const Fixtures f = [] {
    Fixtures f;
    std::string error;
    f.dir = test::python_fixtures("tests/image_fixtures.py", {"tests/folder_fixtures.py"}, "PIL, torchvision, numpy",
                                  &f.skip, &error);
    if (f.dir.empty()) {
      if (f.skip.empty()) ADD_FAILURE() << error;
      return f;
    }
    std::ifstream in(f.dir + "/manifest.json");
    f.manifest = nlohmann::json::parse(in);
    return f;
  }();
  return f;
}

// The largest |a - b| over an Image8's samples and a uint8 .npy of PIL's ([H,W] or [H,W,C]), with
// PIL's values mapped through `pil` first; -1 if the shapes differ.
int max_diff(
    const Image8& img, const Tensor& npy, int (*pil)(int) = [](int v) { return v; }) {
  const bool grey_npy = npy.ndim() == 2;
  if (npy.dtype() != DType::uint8 || npy.size(0) != img.height || npy.size(1) != img.width ||
      (grey_npy ? 1 : npy.size(2)) != img.channels())
    return -1;
  const uint8_t* p = npy.data<uint8_t>();
  int worst = 0;
  for (size_t i = 0; i < img.samples.size(); ++i) worst = std::max(worst, std::abs(int(img.samples[i]) - pil(p[i])));
  return worst;
}

std::string shape_of(const Image8& img) {
  return std::to_string(img.height) + "x" + std::to_string(img.width) + "x" + std::to_string(img.channels());
}

TEST(ImagePil, DecodedPixelsEqualPils) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object()) << "the fixture generator failed";
  int worst_decoded = 0, worst_rgb = 0, compared = 0;
  for (const auto& [name, e] : f.manifest["images"].items()) {
    SCOPED_TRACE(name);
    const Image8 img = data::read_image(f.dir + "/" + e["file"].get<std::string>());
    const std::string mode = e["mode"];
    if (e.contains("decoded")) {
      // PIL holds JPEG CMYK inverted ("CMYK;I"); fovea keeps the stored samples.
      const auto pil = mode == "CMYK" ? +[](int v) { return 255 - v; } : +[](int v) { return v; };
      const Tensor want = read_npy(f.dir + "/" + e["decoded"].get<std::string>());
      const int d = max_diff(img, want, pil);
      EXPECT_EQ(d, 0) << "decoded " << shape_of(img) << " (mode " << mode << ") vs PIL's " << want.str();
      worst_decoded = std::max(worst_decoded, d);
      ++compared;
    }
    const Image8 rgb = data::to_rgb(img);
    const int d = max_diff(rgb, read_npy(f.dir + "/" + e["rgb"].get<std::string>()));
    EXPECT_EQ(d, 0) << "to_rgb of mode " << mode;
    worst_rgb = std::max(worst_rgb, d);
  }
  EXPECT_GE(compared, 12);
  std::cout << "[ measured ] decoded samples vs PIL: max |difference| " << worst_decoded << " over " << compared
            << " files; after convert(\"RGB\"): " << worst_rgb << "\n";
}

TEST(ImagePil, BilinearResizeEqualsPils) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object());
  int worst = 0;
  for (const auto& r : f.manifest["resizes"]) {
    const std::string src =
        f.dir + "/" + f.manifest["images"][r["source"].get<std::string>()]["file"].get<std::string>();
    const Image8 img = data::read_image(src);
    const Image8 out =
        resize_bilinear_pil(img.colour == ImageColour::grey ? img : data::to_rgb(img), r["width"], r["height"]);
    const int d = max_diff(out, read_npy(f.dir + "/" + r["npy"].get<std::string>()));
    EXPECT_EQ(d, 0) << r.dump();
    worst = std::max(worst, d);
  }
  std::cout << "[ measured ] Image.resize(BILINEAR) vs PIL: max |difference| " << worst << " over "
            << f.manifest["resizes"].size() << " resizes\n";
}

TEST(ImagePil, EvalTransformMatchesTorchvisionWithin1Of255) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object());
  const data::EvalTransform t;
  int worst_crop = 0;
  double worst_input = 0;  // on the [0, 1] scale: |difference| * std
  for (const auto& [name, e] : f.manifest["images"].items()) {
    SCOPED_TRACE(name);
    const std::string path = f.dir + "/" + e["file"].get<std::string>();
    const Image8 rgb = data::to_rgb(data::read_image(path));
    const int d = max_diff(center_crop(data::resize_shorter_side(rgb, 256), 224, 224),
                           read_npy(f.dir + "/" + e["crop"].get<std::string>()));
    EXPECT_GE(d, 0) << "crop shape";
    EXPECT_LE(d, 1);
    worst_crop = std::max(worst_crop, d);
    const Tensor got = data::load_eval_image(path, t);
    const Tensor want = read_npy(f.dir + "/" + e["input"].get<std::string>());
    ASSERT_EQ(got.shape(), Shape({3, 224, 224}));
    ASSERT_EQ(want.shape(), got.shape());
    const float* g = got.data<float>();
    const float* w = want.data<float>();
    for (int64_t i = 0; i < got.numel(); ++i) {
      const double diff = std::abs(double(g[i]) - double(w[i])) * t.stddev[size_t(i / (224 * 224))];
      ASSERT_FALSE(std::isnan(g[i])) << i;
      ASSERT_LE(diff, 1.0 / 255.0) << "element " << i << ": " << g[i] << " vs torchvision's " << w[i];
      worst_input = std::max(worst_input, diff);
    }
  }
  std::cout << "[ measured ] Resize(256)+CenterCrop(224) vs PIL+torchvision: max |difference| " << worst_crop
            << " (8-bit levels); after ToTensor+Normalize, on the [0,1] scale: " << worst_input << "\n";
}

// ------------------------------------------------------------------ known answers (no Python needed)

Image8 make(int64_t w, int64_t h, ImageColour c, const std::vector<uint8_t>& s) {
  Image8 img;
  img.width = w;
  img.height = h;
  img.colour = c;
  img.samples = s;
  return img;
}

Image8 noise(int64_t w, int64_t h, ImageColour c, uint32_t seed) {
  Image8 img = make(w, h, c, {});
  img.samples.resize(size_t(w * h * img.channels()));
  uint32_t x = seed * 2654435761u + 1;
  for (uint8_t& v : img.samples) {
    x = x * 1664525u + 1013904223u;
    v = uint8_t(x >> 24);
  }
  return img;
}

TEST(ImageOps, ResizeKeepsConstantImagesAndSkipsUnchangedAxes) {
  for (auto [w, h] : {std::pair<int64_t, int64_t>{1, 1}, {7, 3}, {300, 1}, {64, 640}, {513, 257}}) {
    Image8 flat = make(37, 23, ImageColour::rgb, std::vector<uint8_t>(37 * 23 * 3, 201));
    const Image8 out = resize_bilinear_pil(flat, w, h);
    ASSERT_EQ(out.samples.size(), size_t(w * h * 3));
    for (uint8_t v : out.samples) ASSERT_EQ(v, 201) << w << "x" << h;
  }
  const Image8 img = noise(19, 11, ImageColour::grey, 1);
  EXPECT_EQ(resize_bilinear_pil(img, 19, 11).samples, img.samples);  // no pass at all
  const Image8 tall = resize_bilinear_pil(img, 19, 30);              // vertical only: columns independent
  for (int64_t x = 0; x < 19; ++x) {
    Image8 col = make(1, 11, ImageColour::grey, {});
    for (int64_t y = 0; y < 11; ++y) col.samples.push_back(img.samples[size_t(y * 19 + x)]);
    const Image8 col30 = resize_bilinear_pil(col, 1, 30);
    for (int64_t y = 0; y < 30; ++y) ASSERT_EQ(tall.samples[size_t(y * 19 + x)], col30.samples[size_t(y)]);
  }
}

TEST(ImageOps, HalvingAveragesPairsAndDoublingInterpolates) {
  // Halving: the triangle of support 2 covers 4 pixels with weights 1/8, 3/8, 3/8, 1/8 (inside).
  const Image8 row = make(8, 1, ImageColour::grey, {0, 80, 160, 240, 0, 0, 100, 100});
  const Image8 half = resize_bilinear_pil(row, 4, 1);
  // Output 0 covers [0, 2) with weights 3/8, 3/8, 1/8 renormalised (pixel -1 is outside): (0*3 + 80*3 + 160)/7.
  EXPECT_EQ(half.samples[0], uint8_t(std::floor((0 * 3 + 80 * 3 + 160 * 1) / 7.0 + 0.5)));
  EXPECT_EQ(half.samples[1], uint8_t(std::floor((80 * 1 + 160 * 3 + 240 * 3 + 0 * 1) / 8.0 + 0.5)));
  EXPECT_EQ(half.samples[3], uint8_t(std::floor((0 * 1 + 100 * 3 + 100 * 3) / 7.0 + 0.5)));  // pixels 5, 6, 7
  // Doubling: output 1 sits at source 0.75: 0.75 * a + 0.25 * b ... with a = 0, b = 200: 50.
  const Image8 two = make(2, 1, ImageColour::grey, {0, 200});
  const Image8 four = resize_bilinear_pil(two, 4, 1);
  EXPECT_EQ(four.samples, std::vector<uint8_t>({0, 50, 150, 200}));
}

TEST(ImageOps, ShorterSideAndCenterCropFollowTorchvision) {
  using HW = std::pair<int64_t, int64_t>;
  EXPECT_EQ(data::shorter_side_size(217, 300, 256), HW(256, 353));  // int(353.9)
  EXPECT_EQ(data::shorter_side_size(500, 375, 256), HW(341, 256));  // int(341.3)
  EXPECT_EQ(data::shorter_side_size(256, 256, 256), HW(256, 256));
  EXPECT_EQ(data::shorter_side_size(1, 1000, 224), HW(224, 224000));
  // Offsets round half to even, as Python's round(): 33 / 2 = 16.5 -> 16, 35 / 2 = 17.5 -> 18.
  const Image8 img = noise(259, 257, ImageColour::grey, 2);
  const Image8 c = center_crop(img, 224, 224);
  EXPECT_EQ(c.samples[0], img.samples[size_t(16 * 259 + 18)]);
  EXPECT_EQ(c.samples.back(), img.samples[size_t((16 + 223) * 259 + 18 + 223)]);
  // Padding: 3 wide, 1 high into 4x4: (4 - 3) // 2 = 0 columns before, (4 - 1) // 2 = 1 row before.
  const Image8 small = make(3, 1, ImageColour::grey, {7, 8, 9});
  EXPECT_EQ(center_crop(small, 4, 4).samples, std::vector<uint8_t>({0, 0, 0, 0, 7, 8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  // One side padded, the other cropped: 5 wide into 2 (offset round(1.5) = 2), 1 high into 3.
  const Image8 wide = make(5, 1, ImageColour::grey, {1, 2, 3, 4, 5});
  EXPECT_EQ(center_crop(wide, 3, 2).samples, std::vector<uint8_t>({0, 0, 3, 4, 0, 0}));
}

TEST(ImageOps, ToRgbAndNormalizeFollowPil) {
  const Image8 la = make(2, 1, ImageColour::grey_alpha, {10, 255, 200, 0});
  EXPECT_EQ(data::to_rgb(la).samples, std::vector<uint8_t>({10, 10, 10, 200, 200, 200}));
  const Image8 rgba = make(1, 1, ImageColour::rgba, {1, 2, 3, 4});
  EXPECT_EQ(data::to_rgb(rgba).samples, std::vector<uint8_t>({1, 2, 3}));
  // CMYK stored inverted: (c', m', y', k') = (255, 0, 128, 255) is no cyan, full magenta, half yellow, no black.
  const Image8 cmyk = make(1, 1, ImageColour::cmyk, {255, 0, 128, 255});
  EXPECT_EQ(data::to_rgb(cmyk).samples, std::vector<uint8_t>({255, 0, 128}));
  const Image8 dark = make(1, 1, ImageColour::cmyk, {255, 255, 255, 100});  // no ink but 155/255 black
  EXPECT_EQ(data::to_rgb(dark).samples, std::vector<uint8_t>({100, 100, 100}));
  const Tensor t = data::to_normalized_tensor(make(2, 1, ImageColour::rgb, {0, 51, 255, 255, 0, 102}),
                                              {0.5f, 0.25f, 0.0f}, {0.5f, 0.25f, 2.0f});
  EXPECT_EQ(t.shape(), Shape({3, 1, 2}));
  EXPECT_EQ(t.to_vector<float>(), std::vector<float>({-1.0f, 1.0f, (0.2f - 0.25f) / 0.25f, -1.0f, 0.5f, 0.2f}));
}

// ------------------------------------------------------------------ bad files

std::string temp_file(const std::string& name, const std::string& bytes) {
  const std::string path =
      (fs::temp_directory_path() / ("fovea_image_test_" + std::to_string(::getpid()) + "_" + name)).string();
  write_file_atomic(path, bytes);
  return path;
}

// A JPEG of `img` (grey or RGB) by libjpeg's encoder.
std::string encode_jpeg(const Image8& img, int quality) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = JDIMENSION(img.width);
  c.image_height = JDIMENSION(img.height);
  c.input_components = img.channels();
  c.in_color_space = img.channels() == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(img.samples.data() + size_t(c.next_scanline) * img.width * img.channels());
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::string out(reinterpret_cast<char*>(buf), size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

TEST(ImageFiles, JpegRoundTripKeepsShapeAndOrientation) {
  Image8 img = make(37, 21, ImageColour::rgb, {});
  for (int64_t y = 0; y < 21; ++y)
    for (int64_t x = 0; x < 37; ++x)
      for (int c = 0; c < 3; ++c) img.samples.push_back(uint8_t(c == 0 ? x * 6 : c == 1 ? y * 10 : 128));
  const Image8 back = data::read_image(temp_file("rt.jpg", encode_jpeg(img, 100)));
  ASSERT_EQ(back.colour, ImageColour::rgb);
  ASSERT_EQ(back.width, 37);
  ASSERT_EQ(back.height, 21);
  int worst = 0;
  for (size_t i = 0; i < img.samples.size(); ++i)
    worst = std::max(worst, std::abs(int(back.samples[i]) - int(img.samples[i])));
  EXPECT_LE(worst, 8);  // quality 100 with 4:2:0 chroma: a few levels
  const Image8 grey = data::read_image(temp_file("g.jpg", encode_jpeg(noise(9, 5, ImageColour::grey, 3), 90)));
  EXPECT_EQ(grey.colour, ImageColour::grey);
  EXPECT_EQ(grey.samples.size(), 45u);
}

// A PNG of any header, with `raw` (already filtered rows) deflated as its image data.
std::string png_with(uint32_t w, uint32_t h, int depth, int colour, const std::string& raw) {
  const auto be32 = [](uint32_t v) {
    return std::string{char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
  };
  const auto chunk = [&](const std::string& type, const std::string& d) {
    const std::string td = type + d;
    return be32(uint32_t(d.size())) + td +
           be32(uint32_t(crc32(0, reinterpret_cast<const Bytef*>(td.data()), uInt(td.size()))));
  };
  uLongf n = compressBound(uLong(raw.size()));
  std::string z(n, '\0');
  compress(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()));
  z.resize(n);
  const std::string ihdr = be32(w) + be32(h) + std::string{char(depth), char(colour), 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", z) + chunk("IEND", "");
}

TEST(ImageFiles, BadFilesNameTheFileAndTheProblem) {
  // A decompression bomb: 60000 x 60000 RGB (10.8 billion samples) in a file of a few hundred bytes,
  // refused from its header before anything is allocated for it.
  const std::string bomb = temp_file("bomb.png", png_with(60000, 60000, 8, 2, std::string(60000 * 3 + 1, '\0')));
  EXPECT_LT(fs::file_size(bomb), 2000u);
  EXPECT_TRUE(throws_error([&] { data::read_image(bomb); }, {bomb, "too large"}));
  const std::string wide = temp_file("wide.png", png_with(100000, 1, 8, 0, std::string(100001, '\0')));
  EXPECT_TRUE(throws_error([&] { data::read_image(wide); }, {wide, "PNG file"}));
  // A JPEG whose frame header claims 65000 x 65000: refused before decoding.
  std::string jpeg = encode_jpeg(noise(16, 16, ImageColour::rgb, 4), 90);
  const size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  jpeg[sof + 5] = jpeg[sof + 7] = char(0xFD);
  jpeg[sof + 6] = jpeg[sof + 8] = char(0xE8);
  const std::string huge = temp_file("huge.jpg", jpeg);
  EXPECT_TRUE(throws_error([&] { data::read_image(huge); }, {huge, "65000x65000", "too large"}));
  // Truncated JPEGs: cut in the header, and in the image data.
  const std::string good = encode_jpeg(noise(64, 48, ImageColour::rgb, 5), 90);
  for (size_t keep : {size_t(20), good.size() / 2, good.size() - 2}) {
    const std::string cut = temp_file("cut.jpg", good.substr(0, keep));
    EXPECT_TRUE(throws_error([&] { data::read_image(cut); }, {cut, "JPEG file", "truncated"})) << keep;
  }
  const std::string junk = temp_file("junk.jpg", "\xff\xd8\xff" + std::string(100, 'x'));
  EXPECT_TRUE(throws_error([&] { data::read_image(junk); }, {junk, "JPEG file"}));
  const std::string text = temp_file("notes.jpg", "these are not pixels");
  EXPECT_TRUE(throws_error([&] { data::read_image(text); }, {text, "not a JPEG or PNG image"}));
  const std::string empty = temp_file("empty.png", "");
  EXPECT_TRUE(throws_error([&] { data::read_image(empty); }, {empty, "the file is empty"}));
  const std::string gif = temp_file("a.gif", "GIF89a\x01\x00\x01\x00");
  EXPECT_TRUE(throws_error([&] { data::read_image(gif); }, {gif, "a GIF file", "JPEG and PNG"}));
  const std::string png_cut = temp_file("cut.png", png_with(5, 5, 8, 0, std::string(30, '\x01')).substr(0, 40));
  EXPECT_TRUE(throws_error([&] { data::read_image(png_cut); }, {png_cut, "PNG file"}));
  const std::string missing = (fs::temp_directory_path() / "fovea_image_test_no_such_file.jpg").string();
  EXPECT_TRUE(throws_error([&] { data::load_eval_image(missing); }, {missing}));
  for (const auto& p : {bomb, wide, huge, junk, text, empty, gif, png_cut}) fs::remove(p);
}

TEST(ImageFiles, SixteenBitPngsKeepTheirHighByte) {
  // Grey 16-bit: PIL 9 opens it as mode "I" and saturates every value above 255 when converting to
  // RGB (almost all white); fovea takes the high byte, as PIL does for 16-bit RGB.
  std::string raw = std::string(1, '\0') + std::string("\x00\x00\x01\xff\x80\x00\xff\xff", 8);
  const Image8 g = data::decode_image(png_with(4, 1, 16, 0, raw), "g16.png");
  EXPECT_EQ(g.colour, ImageColour::grey);
  EXPECT_EQ(g.samples, std::vector<uint8_t>({0, 1, 128, 255}));
}

// ------------------------------------------------------------------ class names

TEST(ClassNames, ImagenetNamesAreTorchvisions) {
  const std::vector<std::string>& names = data::imagenet_classes();
  ASSERT_EQ(names.size(), 1000u);
  EXPECT_EQ(names[0], "tench");
  EXPECT_EQ(names[1], "goldfish");
  EXPECT_EQ(names[999], "toilet tissue");
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << "comparison with torchvision: " << f.skip;
  ASSERT_TRUE(f.manifest.is_object());
  EXPECT_EQ(names, f.manifest["imagenet_categories"].get<std::vector<std::string>>());
}

TEST(ClassNames, FilesOfOneNamePerLine) {
  EXPECT_EQ(data::parse_class_names("cat\r\ndog\nhot dog", "c.txt"),
            std::vector<std::string>({"cat", "dog", "hot dog"}));
  EXPECT_EQ(data::parse_class_names("a\n", "c.txt"), std::vector<std::string>({"a"}));
  EXPECT_TRUE(throws_error([] { data::parse_class_names("", "c.txt"); }, {"c.txt", "holds no names"}));
  EXPECT_TRUE(throws_error([] { data::parse_class_names("a\n\nb", "c.txt"); }, {"c.txt", "line 2 is empty"}));
  EXPECT_TRUE(throws_error([] { data::parse_class_names("a\n  \n", "c.txt"); }, {"c.txt", "line 2 is empty"}));
  EXPECT_TRUE(
      throws_error([] { data::parse_class_names("a\n b", "c.txt"); }, {"c.txt", "line 2", "leading or trailing"}));
  EXPECT_TRUE(
      throws_error([] { data::parse_class_names("a\nb\na", "c.txt"); }, {"c.txt", "line 3 repeats 'a' from line 1"}));
  const std::string missing = (fs::temp_directory_path() / "fovea_no_such_classes.txt").string();
  EXPECT_TRUE(throws_error([&] { data::read_class_names(missing); }, {missing}));
}

// ---------------------------------------------------------------- folder datasets against torchvision

// The same generator run as fixtures() (image_fixtures.py writes the folder set too), its folder_set part.
const Fixtures& folder_fixtures() {
  static const Fixtures f = [] {
    Fixtures f = fixtures();
    if (f.dir.empty()) return f;
    f.dir += "/folder_set";
    std::ifstream in(f.dir + "/manifest.json");
    f.manifest = nlohmann::json::parse(in);
    return f;
  }();
  return f;
}

TEST(FolderTorchvision, ClassesSamplesAndEvalTensorsAreImageFolders) {
  const Fixtures& f = folder_fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object()) << "the fixture generator failed";
  data::FolderOptions o;
  o.image_size = f.manifest["image_size"].get<int64_t>();
  for (const auto& [name, split] : {std::pair{"train", data::Split::train}, std::pair{"val", data::Split::test}}) {
    SCOPED_TRACE(name);
    const nlohmann::json& tv = f.manifest["splits"][name];
    const data::Dataset ds = data::load_image_folder(f.dir + "/folder", split, o);
    EXPECT_EQ(ds.class_names, tv["classes"].get<std::vector<std::string>>());
    for (const auto& [cls, idx] : tv["class_to_idx"].items()) EXPECT_EQ(ds.class_names[idx.get<size_t>()], cls);
    ASSERT_EQ(ds.size(), int64_t(tv["samples"].size()));
    for (size_t i = 0; i < tv["samples"].size(); ++i) {
      EXPECT_EQ(fs::relative((*ds.files)[i], f.dir).string(), tv["samples"][i][0].get<std::string>()) << i;
      EXPECT_EQ(ds.labels.data<int64_t>()[i], tv["samples"][i][1].get<int64_t>()) << i;
    }
  }
  // The eval transform, then ToTensor and Normalize as the loader does them: within 1/255 of torchvision.
  const data::Dataset val = data::load_image_folder(f.dir + "/folder", data::Split::test, o);
  const Tensor want = read_npy(f.dir + "/val_eval.npy");
  const int64_t S = o.image_size;
  ASSERT_EQ(want.shape(), Shape({val.size(), 3, S, S}));
  data::LoaderOptions lo;
  lo.batch_size = val.size();
  lo.shuffle = false;
  const data::EvalTransform imagenet;
  lo.normalization = {imagenet.mean, imagenet.stddev};
  data::BatchLoader loader(val, lo);
  loader.start_epoch(0);
  data::Batch b;
  ASSERT_TRUE(loader.next(b));
  double worst = 0;
  int64_t off = 0;  // elements more than 1e-5 apart: pixels that differ at all
  for (int64_t i = 0; i < want.numel(); ++i) {
    const int64_t c = (i / (S * S)) % 3;
    const double d = std::abs(double(b.images.data<float>()[i]) - want.data<float>()[i]) * imagenet.stddev[size_t(c)];
    worst = std::max(worst, d);
    off += d > 1e-5;
  }
  EXPECT_LE(worst, 1.0 / 255 + 1e-6);
  EXPECT_LE(off, want.numel() / 100) << "PNG pixels should agree exactly; only JPEG decoding may differ";
  // RandomResizedCrop after its box: F.resized_crop.
  for (const auto& c : f.manifest["crops"]) {
    const std::vector<int64_t> box = c["box"].get<std::vector<int64_t>>();
    const Image8 rgb = data::to_rgb(data::read_image(f.dir + "/" + c["file"].get<std::string>()));
    const Image8 crop = data::resized_crop(rgb, box[0], box[1], box[2], box[3], 24);
    EXPECT_EQ(max_diff(crop, read_npy(f.dir + "/" + c["npy"].get<std::string>())), 0) << c["file"];
  }
}

TEST(FolderImages, BombsAndTruncatedFilesInAFolderAreRefusedNamingTheFile) {
  const std::string root =
      (fs::temp_directory_path() / ("fovea_image_test_" + std::to_string(::getpid()) + "_folder_bad")).string();
  fs::remove_all(root);
  fs::create_directories(root + "/train/a");
  fs::create_directories(root + "/val/a");
  write_file_atomic(root + "/val/a/ok.png", png_with(2, 2, 8, 0, std::string(6, '\x40')));
  // A decompression bomb (60000 x 60000 RGB in a few hundred bytes): the decoder's limits refuse it from its header.
  const std::string bomb = root + "/train/a/bomb.png";
  write_file_atomic(bomb, png_with(60000, 60000, 8, 2, std::string(60000 * 3 + 1, '\0')));
  const std::string cut = root + "/train/a/cut.jpg";
  const std::string jpeg = encode_jpeg(noise(16, 16, ImageColour::rgb, 4), 90);
  write_file_atomic(cut, jpeg.substr(0, jpeg.size() / 2));
  data::FolderOptions o;
  o.image_size = 8;
  data::Dataset ds = data::load_image_folder(root, data::Split::train, o);
  std::vector<uint8_t> out(3 * 64);
  EXPECT_TRUE(throws_error([&] { data::decode_file_sample(ds, 0, 1, 0, out.data()); }, {bomb, "too large"}));
  EXPECT_TRUE(throws_error([&] { data::decode_file_sample(ds, 1, 1, 0, out.data()); }, {cut, "truncated"}));
  ds.file_transform.skip_bad = true;
  EXPECT_FALSE(data::decode_file_sample(ds, 0, 1, 0, out.data()));
  EXPECT_FALSE(data::decode_file_sample(ds, 1, 1, 0, out.data()));
  fs::remove_all(root);
}

}  // namespace
}  // namespace fovea
