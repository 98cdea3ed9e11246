// Writes small valid inputs of every fuzzed format into <dir>/{idx,cifar,npy,safetensors,png,pth,image}/.
#include <cstdio>  // before jpeglib.h
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <jpeglib.h>

#include "core/io.h"
#include "core/npy.h"
#include "core/png_io.h"
#include "core/safetensors.h"
#include "tests/pth_builder.h"

namespace fs = std::filesystem;
using namespace fovea;

// A small JPEG (grey or RGB, baseline or progressive) from libjpeg's encoder.
static std::string jpeg_seed(int w, int h, int components, bool progressive) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = JDIMENSION(w);
  c.image_height = JDIMENSION(h);
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 75, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  std::vector<unsigned char> row(size_t(w * components));
  while (c.next_scanline < c.image_height) {
    for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<unsigned char>((i * 37 + c.next_scanline * 11) & 0xFF);
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  std::string out(reinterpret_cast<char*>(buf), size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

static std::string be32(uint32_t v) {
  return std::string{char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds <dir>\n";
    return 2;
  }
  const fs::path root = argv[1];
  for (const char* d : {"idx", "cifar", "npy", "safetensors", "png", "pth", "image"}) fs::create_directories(root / d);
  auto put = [&](const char* dir, const std::string& name, const std::string& bytes) {
    write_file_atomic((root / dir / name).string(), bytes);
  };
  // IDX: images [3,4,5], labels [3]; and for the pair target a first byte that splits them.
  std::string img = std::string("\0\0\x08\x03", 4) + be32(3) + be32(4) + be32(5) + std::string(60, '\x11');
  std::string lab = std::string("\0\0\x08\x01", 4) + be32(3) + std::string("\x01\x05\x09", 3);
  put("idx", "images.idx", img);
  put("idx", "labels.idx", lab);
  const size_t total = img.size() + lab.size();
  put("idx", "pair.idx", std::string(1, char(img.size() * 255 / total + 1)) + img + lab);
  // CIFAR: two CIFAR-10 records, two CIFAR-100 records.
  put("cifar", "c10.bin", "\x03" + std::string(3072, '\x40') + "\x09" + std::string(3072, '\x80'));
  put("cifar", "c100.bin",
      std::string("\x02\x31", 2) + std::string(3072, '\x40') + std::string("\x13\x63", 2) + std::string(3072, '\x80'));
  // .npy of every dtype.
  put("npy", "f32.npy", serialize_npy(Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3})));
  put("npy", "i64.npy", serialize_npy(Tensor::from_vector<int64_t>({7}, {1})));
  put("npy", "u8.npy", serialize_npy(Tensor::from_vector<uint8_t>({1, 2, 3, 4}, {2, 1, 2})));
  put("npy", "i32.npy", serialize_npy(Tensor::from_vector<int32_t>({-1, 5}, {2})));
  // safetensors with metadata and several dtypes.
  put("safetensors", "model.safetensors",
      serialize_safetensors({{"w", Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2})},
                             {"n", Tensor::from_vector<int64_t>({9}, {})},
                             {"m", Tensor::from_vector<uint8_t>({1, 0, 1}, {3})}},
                            {{"format", "pt"}}));
  // PNGs of 1-4 channels at 8 and 16 bits.
  for (int bits : {8, 16})
    for (int64_t c = 1; c <= 4; ++c) {
      std::vector<float> v(size_t(c * 3 * 5));
      for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 7) / 6.0f;
      const std::string png = encode_png(Tensor::from_vector(v, {c, 3, 5}), bits);
      put("png", "c" + std::to_string(c) + "_" + std::to_string(bits) + ".png", png);
      put("image", "c" + std::to_string(c) + "_" + std::to_string(bits) + ".png", png);
    }
  // PyTorch files: a torch.save-like zip (and its zip64 form) of a small state_dict. Files torch
  // itself wrote (tests/pth_fixtures.py OUTDIR) make good further seeds.
  put("pth", "small.pth", test::make_pth(test::small_state_dict_pickle()));
  put("pth", "small_zip64.pth", test::make_pth(test::small_state_dict_pickle(), /*zip64=*/true));
  // JPEGs for fuzz_image (which also takes the PNGs above).
  put("image", "grey.jpg", jpeg_seed(9, 7, 1, false));
  put("image", "rgb.jpg", jpeg_seed(17, 11, 3, false));
  put("image", "progressive.jpg", jpeg_seed(20, 13, 3, true));
  std::cout << "seeds written to " << root << "\n";
  return 0;
}
