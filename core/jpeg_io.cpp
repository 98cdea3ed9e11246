#include "core/jpeg_io.h"

// jpeglib.h needs FILE and size_t declared first.
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jerror.h>
#include <jpeglib.h>

#include "core/error.h"
#include "core/io.h"

namespace fovea {
namespace {

// Samples (not bytes) an image may hold: as for PNG (core/png_io.cpp), 2^28 samples is 1 GiB as float.
constexpr uint64_t kMaxSamples = uint64_t(1) << 28;
// Progressive files can hold any number of scans, each a pass over the whole image: a tiny file
// could keep the decoder busy for minutes. Real encoders write about ten.
constexpr int kMaxScans = 1000;

// libjpeg reports errors through error_exit, which must not return: it longjmps back to
// decode_raw(). As in png_io.cpp, decode_raw() holds only trivially destructible locals, the image
// lives in the caller, and no C++ exception crosses libjpeg's frames.
struct ErrorManager {
  jpeg_error_mgr pub;  // first: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (msg_level -1) are ignored, except the one for data that ends early: jpeg_mem_src then
// feeds the decoder a fake end-of-image marker and the rest of the image would come out grey.
void on_message(j_common_ptr cinfo, int msg_level) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (msg_level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    std::snprintf(err->message, sizeof err->message, "truncated (the data ends before the image does)");
    std::longjmp(err->jump, 1);
  }
}

void on_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "more than %d scans: refused", kMaxScans);
    std::longjmp(err->jump, 1);
  }
}

bool decode_raw(const unsigned char* data, size_t size, ErrorManager* err, Image8* img) {
  jpeg_decompress_struct cinfo;
  jpeg_progress_mgr progress;
  cinfo.err = jpeg_std_error(&err->pub);
  err->pub.error_exit = on_error;
  err->pub.emit_message = on_message;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  progress.progress_monitor = on_progress;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo.out_color_space = JCS_GRAYSCALE;
      img->colour = ImageColour::grey;
      break;
    case JCS_YCbCr:
    case JCS_RGB:
      cinfo.out_color_space = JCS_RGB;
      img->colour = ImageColour::rgb;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo.out_color_space = JCS_CMYK;
      img->colour = ImageColour::cmyk;
      break;
    default:
      std::snprintf(err->message, sizeof err->message, "colour space %d with %d components is not supported",
                    int(cinfo.jpeg_color_space), cinfo.num_components);
      jpeg_destroy_decompress(&cinfo);
      return false;
  }
  const uint64_t samples = uint64_t(cinfo.image_width) * cinfo.image_height * uint64_t(channels_of(img->colour));
  if (samples == 0 || samples > kMaxSamples) {
    std::snprintf(err->message, sizeof err->message, "%ux%u pixels: %s", cinfo.image_width, cinfo.image_height,
                  samples == 0 ? "empty" : "too large (more than 2^28 samples)");
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_start_decompress(&cinfo);
  img->width = cinfo.output_width;
  img->height = cinfo.output_height;
  const size_t row = size_t(img->width) * size_t(cinfo.output_components);
  if (cinfo.output_components != img->channels()) {
    std::snprintf(err->message, sizeof err->message, "unexpected %d output components", cinfo.output_components);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  img->samples.resize(row * size_t(img->height));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[1] = {img->samples.data() + row * cinfo.output_scanline};
    jpeg_read_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

}  // namespace

bool looks_like_jpeg(const std::string& bytes) {
  return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
         static_cast<unsigned char>(bytes[1]) == 0xD8 && static_cast<unsigned char>(bytes[2]) == 0xFF;
}

Image8 decode_jpeg(const std::string& bytes, const std::string& name) {
  FOVEA_CHECK(looks_like_jpeg(bytes), "JPEG file '", name, "': not a JPEG file (no start-of-image marker FF D8 FF)");
  ErrorManager err{};
  Image8 img;
  FOVEA_CHECK(decode_raw(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), &err, &img), "JPEG file '",
              name, "': ", err.message);
  return img;
}

Image8 read_jpeg(const std::string& path) {
  return decode_jpeg(read_file(path), path);
}

}  // namespace fovea
