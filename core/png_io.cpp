#include "core/png_io.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/io.h"

namespace fovea {
namespace {

// libpng reports errors by longjmp. The functions that call setjmp below hold only trivially
// destructible locals, and everything with a destructor lives in the caller, so a longjmp never
// skips a destructor. C++ exceptions are never thrown through libpng's C frames.
struct PngContext {
  const unsigned char* in = nullptr;
  size_t in_size = 0, in_pos = 0;
  std::string* out = nullptr;
  char error[512] = {0};
};

// Samples (not bytes) an image may hold: 2^28 samples is 1 GiB as float.
constexpr uint64_t kMaxSamples = uint64_t(1) << 28;

void on_error(png_structp png, png_const_charp message) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(ctx->error, sizeof ctx->error, "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void read_bytes(png_structp png, png_bytep data, size_t n) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  if (n > ctx->in_size - ctx->in_pos) png_error(png, "truncated (the data ends early)");
  std::memcpy(data, ctx->in + ctx->in_pos, n);
  ctx->in_pos += n;
}

void write_bytes(png_structp png, png_bytep data, size_t n) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  ctx->out->append(reinterpret_cast<const char*>(data), n);
}

void flush_bytes(png_structp) {}

struct RawImage {
  uint32_t width = 0, height = 0;
  int channels = 0, bit_depth = 0;
  std::vector<unsigned char> data;
  std::vector<png_bytep> rows;
};

bool decode_raw(PngContext* ctx, RawImage* img) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, on_error, on_warning);
  if (!png) {
    std::snprintf(ctx->error, sizeof ctx->error, "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    std::snprintf(ctx->error, sizeof ctx->error, "out of memory");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, ctx, read_bytes);
  png_set_user_limits(png, 1u << 16, 1u << 16);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  // Fuzzing: accept bad CRCs and zlib checksums so that mutated data reaches the decoder.
  png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#ifdef PNG_IGNORE_ADLER32
  png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
#endif
  png_read_info(png, info);
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  img->width = png_get_image_width(png, info);
  img->height = png_get_image_height(png, info);
  img->channels = png_get_channels(png, info);
  img->bit_depth = png_get_bit_depth(png, info);
  if (uint64_t(img->width) * img->height * uint64_t(img->channels) > kMaxSamples)
    png_error(png, "image too large (more than 2^28 samples)");
  const size_t rowbytes = png_get_rowbytes(png, info);
  if (rowbytes != size_t(img->width) * img->channels * (img->bit_depth / 8)) png_error(png, "unexpected row layout");
  img->data.resize(rowbytes * img->height);
  img->rows.resize(img->height);
  for (uint32_t y = 0; y < img->height; ++y) img->rows[y] = img->data.data() + size_t(y) * rowbytes;
  png_read_image(png, img->rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

bool encode_raw(PngContext* ctx, const RawImage* img) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, on_error, on_warning);
  if (!png) {
    std::snprintf(ctx->error, sizeof ctx->error, "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    std::snprintf(ctx->error, sizeof ctx->error, "out of memory");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  static const int kColorType[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                    PNG_COLOR_TYPE_RGB_ALPHA};
  png_set_write_fn(png, ctx, write_bytes, flush_bytes);
  png_set_IHDR(png, info, img->width, img->height, img->bit_depth, kColorType[img->channels], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, const_cast<png_bytepp>(img->rows.data()));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

bool looks_like_png(const std::string& bytes) {
  return bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0;
}

namespace {
RawImage decode_checked(const std::string& bytes, const std::string& name) {
  FOVEA_CHECK(looks_like_png(bytes), "PNG file '", name, "': not a PNG file (the 8-byte PNG signature is missing)");
  PngContext ctx;
  ctx.in = reinterpret_cast<const unsigned char*>(bytes.data());
  ctx.in_size = bytes.size();
  RawImage raw;
  FOVEA_CHECK(decode_raw(&ctx, &raw), "PNG file '", name, "': ", ctx.error);
  return raw;
}
}  // namespace

Image8 decode_png8(const std::string& bytes, const std::string& name) {
  RawImage raw = decode_checked(bytes, name);
  static const ImageColour kColour[5] = {ImageColour::grey, ImageColour::grey, ImageColour::grey_alpha,
                                         ImageColour::rgb, ImageColour::rgba};
  Image8 img;
  img.width = raw.width;
  img.height = raw.height;
  img.colour = kColour[raw.channels];
  if (raw.bit_depth == 8) {
    img.samples = std::move(raw.data);
  } else {
    img.samples.resize(raw.data.size() / 2);
    for (size_t i = 0; i < img.samples.size(); ++i) img.samples[i] = raw.data[2 * i];  // big-endian: high byte first
  }
  return img;
}

PngImage decode_png(const std::string& bytes, const std::string& name) {
  const RawImage raw = decode_checked(bytes, name);
  const int64_t C = raw.channels, H = raw.height, W = raw.width;
  PngImage out;
  out.bit_depth = raw.bit_depth;
  out.has_alpha = C == 2 || C == 4;
  out.pixels = Tensor::empty({C, H, W}, DType::float32, kCPU);
  float* dst = out.pixels.data<float>();
  const unsigned char* src = raw.data.data();
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i = (y * W + x) * C + c;
        const float v = raw.bit_depth == 16 ? float((unsigned(src[2 * i]) << 8) | src[2 * i + 1]) * (1.0f / 65535.0f)
                                            : float(src[i]) * (1.0f / 255.0f);
        dst[(c * H + y) * W + x] = v;
      }
  return out;
}

PngImage read_png(const std::string& path) {
  return decode_png(read_file(path), path);
}

std::string encode_png(const Tensor& image, int bit_depth) {
  FOVEA_CHECK(image.defined() && image.dtype() == DType::float32 && (image.ndim() == 2 || image.ndim() == 3),
              "write_png: argument 'image' must be float32 [C,H,W] or [H,W], got ",
              image.defined() ? image.str() : "undefined");
  FOVEA_CHECK(image.device().is_host_memory(), "write_png: image ", image.str(),
              " is on a GPU; copy it with .to(kCPU) first");
  FOVEA_CHECK(bit_depth == 8 || bit_depth == 16, "write_png: argument 'bit_depth' must be 8 or 16, got ", bit_depth);
  const int64_t C = image.ndim() == 3 ? image.size(0) : 1, H = image.size(-2), W = image.size(-1);
  FOVEA_CHECK(C >= 1 && C <= 4, "write_png: image ", image.str(), " has ", C, " channels; PNG takes 1, 2, 3 or 4");
  FOVEA_CHECK(H >= 1 && W >= 1 && H <= (1 << 16) && W <= (1 << 16), "write_png: image ", image.str(),
              ": PNG needs 1 to 65536 rows and columns");
  RawImage raw;
  raw.width = uint32_t(W);
  raw.height = uint32_t(H);
  raw.channels = int(C);
  raw.bit_depth = bit_depth;
  const int64_t bytes_per = bit_depth / 8;
  raw.data.resize(size_t(C * H * W * bytes_per));
  const float* src = image.data<float>();
  const float maxv = bit_depth == 16 ? 65535.0f : 255.0f;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        float v = src[(c * H + y) * W + x];
        v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;  // NaN fails v > 0 and becomes 0
        const unsigned q = unsigned(v * maxv + 0.5f);
        const int64_t i = (y * W + x) * C + c;
        if (bit_depth == 16) {
          raw.data[2 * i] = static_cast<unsigned char>(q >> 8);
          raw.data[2 * i + 1] = static_cast<unsigned char>(q & 0xFF);
        } else {
          raw.data[i] = static_cast<unsigned char>(q);
        }
      }
  raw.rows.resize(size_t(H));
  for (int64_t y = 0; y < H; ++y) raw.rows[y] = raw.data.data() + y * W * C * bytes_per;
  std::string out;
  PngContext ctx;
  ctx.out = &out;
  FOVEA_CHECK(encode_raw(&ctx, &raw), "write_png: libpng failed: ", ctx.error);
  return out;
}

void write_png(const std::string& path, const Tensor& image, int bit_depth) {
  write_file_atomic(path, encode_png(image, bit_depth));
}

}  // namespace fovea
