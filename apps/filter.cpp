// fovea filter IN.png OUT.png --kernel NAME | --kernel-file F: classic image filters through our
// convolution (layers/ops/image_filters.h).
#include <fmt/core.h>

#include <cmath>
#include <memory>

#include "apps/command.h"
#include "apps/flags.h"
#include "core/io.h"
#include "core/png_io.h"
#include "layers/ops/image_filters.h"

namespace fovea::app {
namespace {

struct FilterOptions {
  std::string in, out, kernel, kernel_file, device = "cpu", values = "clamp";
  bool correlate = false, compare_cpu = false;
  int bits = 0;  // 0: the input's bit depth
};

const char* channels_name(int64_t C) {
  switch (C) {
    case 1: return "grey";
    case 2: return "grey+alpha";
    case 3: return "RGB";
    default: return "RGBA";
  }
}

int run_filter(const FilterOptions& o) {
  FOVEA_CHECK(o.kernel.empty() != o.kernel_file.empty(),
              "filter: give exactly one of --kernel NAME and --kernel-file FILE");
  filters::Filter f =
      o.kernel.empty()
          ? filters::Filter{"custom kernel from " + o.kernel_file, {filters::read_kernel_file(o.kernel_file)}, false}
          : filters::named_filter(o.kernel);
  if (o.correlate) f = filters::as_correlation(std::move(f));
  const filters::ValueMode mode = filters::parse_value_mode(o.values);
  const Device device = parse_device(o.device);
  require_device(device);
  ops::Context ctx(device);

  refuse_output_over_input(o.out, "output", o.in, "");
  refuse_output_over_input(o.out, "output", o.kernel_file, "--kernel-file");
  const PngImage img = read_png(o.in);
  const Tensor out = filters::filter_image(ctx, img.pixels, img.has_alpha, f, mode);
  if (o.compare_cpu && device.type != DeviceType::cpu) {
    // The same filter on the reference (true convolution by ref::filter2d_forward), before clamping.
    ops::Context cpu(kCPU);
    const int64_t colour = img.pixels.size(0) - (img.has_alpha ? 1 : 0);
    const Tensor planes = img.pixels.narrow(0, colour);
    const Tensor a = filters::apply_filter(ctx, planes, f), b = filters::apply_filter(cpu, planes, f);
    double num = 0, den = 0;
    const float *pa = a.data<float>(), *pb = b.data<float>();
    for (int64_t i = 0; i < a.numel(); ++i)
      num += double(pa[i] - pb[i]) * (pa[i] - pb[i]), den += double(pb[i]) * pb[i];
    const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    fmt::print(messages_stream(o.out), "{} vs cpu: relative L2 error {:.3g}\n", device.str(), rel);
    FOVEA_CHECK(rel <= 1e-5, "filter: device ", device.str(), " differs from the CPU reference: relative L2 error ",
                rel, " > 1e-5");
  }
  const int bits = o.bits ? o.bits : img.bit_depth;
  write_png(o.out, out, bits);
  fmt::print(messages_stream(o.out), "{}: {} ({} {}x{}, {}-bit) -> {} ({}-bit), {} on {}, values {}\n", f.name, o.in,
             channels_name(img.pixels.size(0)), img.pixels.size(2), img.pixels.size(1), img.bit_depth, o.out, bits,
             o.correlate ? "correlation" : "true convolution", device.str(), o.values);
  return 0;
}

std::string footer() {
  std::string s =
      "\nConvolution: by default the kernel is applied by TRUE convolution, as in image-processing texts:\n"
      "  y[i][j] = sum_ab k[a][b] * x[i+R/2-a][j+S/2-b]   (the kernel rotated by 180 degrees),\n"
      "zero padding, output the size of the input. A CNN's conv2d is a correlation (no rotation); --correlate\n"
      "applies the kernel that way. The two differ only for kernels that are not symmetric under the rotation\n"
      "(sobel-x, sobel-y, emboss, most custom kernels). Device cpu runs the C++ reference (filter2d); emu and\n"
      "cuda run our conv2d kernels with the rotated kernel, which gives the same numbers.\n"
      "\nColour images are filtered per channel; an alpha channel is copied unchanged. 8- and 16-bit PNGs,\n"
      "grey, grey+alpha, RGB, RGBA and palette images are read; the output is grey/RGB(+alpha).\n"
      "\nValues outside [0,1]: --values clamp (default) clamps them (negative edge responses become black);\n"
      "normalize maps the min..max of the result (all colour channels together) to 0..1; abs takes |v|, then clamps.\n"
      "\nNamed kernels (--kernel):\n";
  for (const filters::NamedFilterInfo& f : filters::named_filters())
    s += fmt::format("  {:<16} {}\n", f.name, f.description);
  s += "\nKernel file (--kernel-file): rows of numbers separated by spaces or commas, an odd number of rows and\n"
       "columns (at most 63x63); '#' starts a comment; an optional first line gives a scale for every value,\n"
       "as a fraction '1/16' or as 'scale 0.0625'. Example (a 3x3 Gaussian):\n"
       "  1/16\n  1 2 1\n  2 4 2\n  1 2 1\n";
  return s;
}

Command filter_command(
    "filter", "Filter an image (PNG) with a classic kernel through fovea's convolution", [](CLI::App& app) -> Action {
      auto o = std::make_shared<FilterOptions>();
      app.add_option("input", o->in, "input PNG (8 or 16 bit, grey, RGB, with or without alpha)")->required();
      app.add_option("output", o->out, "output PNG")->required();
      app.add_option("--kernel", o->kernel, "a named kernel (listed below)");
      app.add_option("--kernel-file", o->kernel_file, "a text file with a custom kernel (format below)");
      app.add_option("--device", o->device, "cpu (the reference), emu or cuda[:N] (our conv2d kernels)")
          ->capture_default_str();
      app.add_option("--values", o->values, "clamp, normalize or abs (see below)")
          ->capture_default_str()
          ->check(one_of({"clamp", "normalize", "normalise", "abs"}));
      app.add_flag("--correlate", o->correlate, "apply the kernel as a correlation (no 180-degree rotation)");
      app.add_option("--bits", o->bits, "output bit depth, 8 or 16 (default: the input's)")->check(one_of({"8", "16"}));
      app.add_flag("--compare-cpu", o->compare_cpu,
                   "with --device emu|cuda: also run the CPU reference and fail if they differ "
                   "(relative L2 error > 1e-5)");
      app.footer(footer());
      return [o] { return run_filter(*o); };
    });

}  // namespace
}  // namespace fovea::app
