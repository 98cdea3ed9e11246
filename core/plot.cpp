#include "core/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/png_io.h"

namespace fovea {
namespace {

// 5x7 glyphs for ASCII 32..126; row r is bits 4..0, bit 4 the leftmost pixel. Drawn for fovea.
const uint8_t kFont5x7[95][7] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // space
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04},  // !
    {0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00},  // "
    {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A},  // #
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04},  // $
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},  // %
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D},  // &
    {0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00},  // '
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},  // (
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},  // )
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00},  // *
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00},  // +
    {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08},  // ,
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00},  // -
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C},  // .
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00},  // /
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E},  // 0
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},  // 1
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F},  // 2
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},  // 3
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02},  // 4
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},  // 5
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E},  // 6
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},  // 7
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E},  // 8
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},  // 9
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00},  // :
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08},  // ;
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02},  // <
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00},  // =
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08},  // >
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04},  // ?
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E},  // @
    {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},  // A
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},  // B
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E},  // C
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},  // D
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F},  // E
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},  // F
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F},  // G
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},  // H
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // I
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},  // J
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},  // K
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},  // L
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11},  // M
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},  // N
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // O
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},  // P
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D},  // Q
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},  // R
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E},  // S
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // T
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // U
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},  // V
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A},  // W
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},  // X
    {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04},  // Y
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},  // Z
    {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E},  // [
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00},  // backslash
    {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E},  // ]
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00},  // ^
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F},  // _
    {0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00},  // `
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F},  // a
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E},  // b
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E},  // c
    {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F},  // d
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E},  // e
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08},  // f
    {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // g
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11},  // h
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E},  // i
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C},  // j
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12},  // k
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // l
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11},  // m
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11},  // n
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E},  // o
    {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10},  // p
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01},  // q
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10},  // r
    {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E},  // s
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06},  // t
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D},  // u
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04},  // v
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A},  // w
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11},  // x
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // y
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F},  // z
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02},  // {
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // |
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08},  // }
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00},  // ~
};

struct Canvas {
  float* p;
  int H, W;
  void blend(int x, int y, PlotColor c, float a) {
    if (x < 0 || y < 0 || x >= W || y >= H || !(a > 0.0f)) return;
    a = std::min(a, 1.0f);
    const float rgb[3] = {c.r, c.g, c.b};
    for (int ch = 0; ch < 3; ++ch) {
      float& v = p[(size_t(ch) * H + y) * W + x];
      v = v * (1.0f - a) + rgb[ch] * a;
    }
  }
  void fill(int x0, int y0, int x1, int y1, PlotColor c) {  // [x0, x1) x [y0, y1)
    for (int y = std::max(y0, 0); y < std::min(y1, H); ++y)
      for (int x = std::max(x0, 0); x < std::min(x1, W); ++x) blend(x, y, c, 1.0f);
  }
};

Canvas canvas_of(Tensor& image, const char* op) {
  FOVEA_CHECK(image.defined() && image.dtype() == DType::float32 && image.ndim() == 3 && image.size(0) == 3 &&
                  image.device().is_host_memory(),
              op, ": argument 'image' must be a host float32 [3,H,W] tensor, got ",
              image.defined() ? image.str() : "undefined");
  return Canvas{image.data<float>(), int(image.size(1)), int(image.size(2))};
}

void draw_text_on(Canvas& cv, int x, int y, const std::string& text, PlotColor color, int scale) {
  for (size_t k = 0; k < text.size(); ++k) {
    unsigned char ch = static_cast<unsigned char>(text[k]);
    if (ch < 32 || ch > 126) ch = '?';
    const uint8_t* g = kFont5x7[ch - 32];
    const int gx = x + int(k) * 6 * scale;
    for (int r = 0; r < 7; ++r)
      for (int c = 0; c < 5; ++c)
        if (g[r] & (0x10 >> c))
          cv.fill(gx + c * scale, y + r * scale, gx + (c + 1) * scale, y + (r + 1) * scale, color);
  }
}

// 1, 2 or 5 times a power of ten, near range / target.
double nice_step(double range, int target) {
  const double raw = range / target;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / p;
  return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * p;
}

struct Axis {
  double lo = 0, hi = 1;  // in plotted units (log10 for a log axis)
  bool log = false;
  std::vector<double> ticks;  // in plotted units
  std::vector<std::string> labels;
};

std::string format_tick(double v, double step) {
  if (std::fabs(v) < step * 1e-6) return "0";
  char buf[32];
  const double a = std::fabs(v);
  const int decimals = std::max(0, int(std::ceil(-std::log10(step) - 1e-9)));
  if (a >= 1e6 || decimals > 5)
    std::snprintf(buf, sizeof buf, "%.3g", v);
  else
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

Axis make_axis(double lo, double hi, bool log) {
  Axis ax;
  ax.log = log;
  if (!(lo <= hi)) lo = 0, hi = 1;  // no finite data
  if (log) {
    double L = std::floor(std::log10(lo)), U = std::ceil(std::log10(hi));
    if (U <= L) U = L + 1;
    ax.lo = L;
    ax.hi = U;
    const int every = U - L > 8 ? int(std::ceil((U - L) / 8)) : 1;
    for (double d = L; d <= U + 1e-9; d += every) {
      ax.ticks.push_back(d);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", std::pow(10.0, d));
      ax.labels.push_back(buf);
      if (U - L <= 2 && d < U)
        for (double m : {2.0, 5.0}) {
          ax.ticks.push_back(d + std::log10(m));
          std::snprintf(buf, sizeof buf, "%g", m * std::pow(10.0, d));
          ax.labels.push_back(buf);
        }
    }
    return ax;
  }
  if (hi - lo <= std::max(std::fabs(hi), 1.0) * 1e-12) {
    const double pad = std::max(std::fabs(hi) * 0.1, 0.5);
    lo -= pad;
    hi += pad;
  }
  const double step = nice_step(hi - lo, 5);
  ax.lo = std::floor(lo / step + 1e-9) * step;
  ax.hi = std::ceil(hi / step - 1e-9) * step;
  for (long k = std::lround(ax.lo / step); k <= std::lround(ax.hi / step); ++k) {
    ax.ticks.push_back(double(k) * step);
    ax.labels.push_back(format_tick(double(k) * step, step));
  }
  return ax;
}

// Anti-aliased thick segment into a coverage mask (max of coverages, so joints are not darker).
void draw_segment(std::vector<float>& cov, int x0, int y0, int x1, int y1, double ax, double ay, double bx, double by,
                  float width) {
  const double r = width * 0.5;
  const int W = x1 - x0;
  const int lx = std::max(x0, int(std::floor(std::min(ax, bx) - r - 1))),
            hx = std::min(x1 - 1, int(std::ceil(std::max(ax, bx) + r + 1)));
  const int ly = std::max(y0, int(std::floor(std::min(ay, by) - r - 1))),
            hy = std::min(y1 - 1, int(std::ceil(std::max(ay, by) + r + 1)));
  const double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  for (int y = ly; y <= hy; ++y)
    for (int x = lx; x <= hx; ++x) {
      double t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0.0;
      t = std::clamp(t, 0.0, 1.0);
      const double ex = ax + t * dx - x, ey = ay + t * dy - y;
      const float c = float(std::clamp(r + 0.5 - std::sqrt(ex * ex + ey * ey), 0.0, 1.0));
      float& v = cov[size_t(y - y0) * W + (x - x0)];
      v = std::max(v, c);
    }
}

}  // namespace

PlotColor plot_palette(int i) {
  static const PlotColor kColors[10] = {{0.12f, 0.47f, 0.71f}, {1.00f, 0.50f, 0.05f}, {0.17f, 0.63f, 0.17f},
                                        {0.84f, 0.15f, 0.16f}, {0.58f, 0.40f, 0.74f}, {0.55f, 0.34f, 0.29f},
                                        {0.89f, 0.47f, 0.76f}, {0.50f, 0.50f, 0.50f}, {0.74f, 0.74f, 0.13f},
                                        {0.09f, 0.75f, 0.81f}};
  return kColors[((i % 10) + 10) % 10];
}

int text_width(const std::string& text, int scale) {
  return text.empty() ? 0 : (int(text.size()) * 6 - 1) * scale;
}

int draw_text(Tensor& image, int x, int y, const std::string& text, PlotColor color, int scale) {
  Canvas cv = canvas_of(image, "draw_text");
  FOVEA_CHECK(scale >= 1, "draw_text: argument 'scale' must be >= 1, got ", scale);
  draw_text_on(cv, x, y, text, color, scale);
  return text_width(text, scale);
}

Tensor render_curves(const std::string& title, const std::vector<PlotSeries>& series, const PlotOptions& opt) {
  FOVEA_CHECK(opt.width >= 200 && opt.height >= 150 && opt.width <= 8192 && opt.height <= 8192, "render_curves: size ",
              opt.width, "x", opt.height, " must be within 200x150 .. 8192x8192");
  FOVEA_CHECK(opt.line_width > 0 && opt.line_width <= 20,
              "render_curves: argument 'line_width' must be in (0, 20], got ", opt.line_width);
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  const auto usable = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!opt.log_y || y > 0); };
  for (size_t s = 0; s < series.size(); ++s) {
    const PlotSeries& S = series[s];
    FOVEA_CHECK(S.x.size() == S.y.size(), "render_curves: series ", s, " ('", S.label, "') has ", S.x.size(),
                " x values and ", S.y.size(), " y values");
    for (size_t i = 0; i < S.x.size(); ++i)
      if (usable(S.x[i], S.y[i])) {
        xlo = std::min(xlo, S.x[i]), xhi = std::max(xhi, S.x[i]);
        ylo = std::min(ylo, S.y[i]), yhi = std::max(yhi, S.y[i]);
      }
  }
  if (opt.log_y && !(ylo <= yhi)) ylo = 1, yhi = 10;
  const Axis ax = make_axis(xlo, xhi, false), ay = make_axis(ylo, yhi, opt.log_y);

  Tensor image = Tensor::empty({3, opt.height, opt.width}, DType::float32, kCPU);
  std::fill(image.data<float>(), image.data<float>() + image.numel(), 1.0f);
  Canvas cv = canvas_of(image, "render_curves");
  const PlotColor black{0, 0, 0}, grid{0.88f, 0.88f, 0.88f}, dark{0.25f, 0.25f, 0.25f};

  int ylabel_w = 0;
  for (const auto& l : ay.labels) ylabel_w = std::max(ylabel_w, text_width(l));
  const int left = ylabel_w + 14, right = opt.width - 20;
  const int top = 36, bottom = opt.height - (opt.x_label.empty() ? 26 : 40);
  const int pw = right - left, ph = bottom - top;
  const auto px = [&](double x) { return left + (x - ax.lo) / (ax.hi - ax.lo) * (pw - 1); };
  const auto py = [&](double y) {
    const double v = opt.log_y ? std::log10(y) : y;
    return bottom - 1 - (v - ay.lo) / (ay.hi - ay.lo) * (ph - 1);
  };

  // Grid, ticks and their labels.
  for (size_t i = 0; i < ax.ticks.size(); ++i) {
    const int x = int(std::lround(left + (ax.ticks[i] - ax.lo) / (ax.hi - ax.lo) * (pw - 1)));
    cv.fill(x, top, x + 1, bottom, grid);
    cv.fill(x, bottom, x + 1, bottom + 4, black);
    draw_text_on(cv, x - text_width(ax.labels[i]) / 2, bottom + 7, ax.labels[i], dark, 1);
  }
  for (size_t i = 0; i < ay.ticks.size(); ++i) {
    const int y = int(std::lround(bottom - 1 - (ay.ticks[i] - ay.lo) / (ay.hi - ay.lo) * (ph - 1)));
    cv.fill(left, y, right, y + 1, grid);
    cv.fill(left - 4, y, left, y + 1, black);
    draw_text_on(cv, left - 7 - text_width(ay.labels[i]), y - 3, ay.labels[i], dark, 1);
  }

  // Curves, clipped to the plot area.
  std::vector<float> cov(size_t(pw) * ph);
  for (const PlotSeries& S : series) {
    std::fill(cov.begin(), cov.end(), 0.0f);
    for (size_t i = 0; i < S.x.size(); ++i) {
      if (!usable(S.x[i], S.y[i])) continue;
      const bool next = i + 1 < S.x.size() && usable(S.x[i + 1], S.y[i + 1]);
      const bool prev = i > 0 && usable(S.x[i - 1], S.y[i - 1]);
      if (next)
        draw_segment(cov, left, top, right, bottom, px(S.x[i]), py(S.y[i]), px(S.x[i + 1]), py(S.y[i + 1]),
                     opt.line_width);
      else if (!prev)  // an isolated point: a dot
        draw_segment(cov, left, top, right, bottom, px(S.x[i]), py(S.y[i]), px(S.x[i]), py(S.y[i]),
                     opt.line_width + 1.0f);
    }
    for (int y = 0; y < ph; ++y)
      for (int x = 0; x < pw; ++x) cv.blend(left + x, top + y, S.color, cov[size_t(y) * pw + x]);
  }

  // Frame, title, axis labels.
  cv.fill(left - 1, top - 1, right + 1, top, black);
  cv.fill(left - 1, bottom, right + 1, bottom + 1, black);
  cv.fill(left - 1, top - 1, left, bottom + 1, black);
  cv.fill(right, top - 1, right + 1, bottom + 1, black);
  const int tscale = text_width(title, 2) <= opt.width - 20 ? 2 : 1;
  draw_text_on(cv, (opt.width - text_width(title, tscale)) / 2, tscale == 2 ? 6 : 12, title, black, tscale);
  if (!opt.x_label.empty())
    draw_text_on(cv, left + (pw - text_width(opt.x_label)) / 2, bottom + 22, opt.x_label, black, 1);
  if (!opt.y_label.empty()) draw_text_on(cv, 4, top - 12, opt.y_label, black, 1);

  // Legend, top right inside the plot.
  int n = 0, lw = 0;
  for (const PlotSeries& S : series)
    if (!S.label.empty()) ++n, lw = std::max(lw, text_width(S.label));
  if (n > 0) {
    const int bw = lw + 34, bh = n * 13 + 8, bx = right - bw - 8, by = top + 8;
    cv.fill(bx, by, bx + bw, by + bh, PlotColor{1, 1, 1});
    cv.fill(bx, by, bx + bw, by + 1, dark);
    cv.fill(bx, by + bh - 1, bx + bw, by + bh, dark);
    cv.fill(bx, by, bx + 1, by + bh, dark);
    cv.fill(bx + bw - 1, by, bx + bw, by + bh, dark);
    int row = 0;
    for (const PlotSeries& S : series) {
      if (S.label.empty()) continue;
      const int y = by + 5 + row * 13;
      cv.fill(bx + 6, y + 2, bx + 24, y + 5, S.color);
      draw_text_on(cv, bx + 28, y, S.label, black, 1);
      ++row;
    }
  }
  return image;
}

void plot_curves(const std::string& path, const std::string& title, const std::vector<PlotSeries>& series,
                 const PlotOptions& options) {
  write_png(path, render_curves(title, series, options), 8);
}

Tensor image_grid(const std::vector<Tensor>& tiles, const GridOptions& opt) {
  FOVEA_CHECK(!tiles.empty(), "image_grid: no tiles");
  FOVEA_CHECK(opt.border >= 0 && opt.scale >= 1 && opt.columns >= 0, "image_grid: border ", opt.border, ", scale ",
              opt.scale, ", columns ", opt.columns, ": need border >= 0, scale >= 1, columns >= 0");
  int64_t H = -1, W = -1;
  bool rgb = false;
  for (size_t k = 0; k < tiles.size(); ++k) {
    const Tensor& t = tiles[k];
    FOVEA_CHECK(t.defined() && t.dtype() == DType::float32 && t.device().is_host_memory() &&
                    (t.ndim() == 2 || (t.ndim() == 3 && (t.size(0) == 1 || t.size(0) == 3))),
                "image_grid: tile ", k, " must be a host float32 [H,W], [1,H,W] or [3,H,W], got ",
                t.defined() ? t.str() : "undefined");
    if (H < 0) H = t.size(-2), W = t.size(-1);
    FOVEA_CHECK(t.size(-2) == H && t.size(-1) == W, "image_grid: tile ", k, " is ", t.str(), ", tile 0 is ", H, "x", W);
    rgb = rgb || (t.ndim() == 3 && t.size(0) == 3);
  }
  const int64_t K = int64_t(tiles.size());
  const int64_t cols = opt.columns > 0 ? std::min<int64_t>(opt.columns, K) : int64_t(std::ceil(std::sqrt(double(K))));
  const int64_t rows = (K + cols - 1) / cols;
  const int64_t th = H * opt.scale, tw = W * opt.scale, b = opt.border;
  const int64_t C = rgb ? 3 : 1, GH = rows * (th + b) + b, GW = cols * (tw + b) + b;
  FOVEA_CHECK(GH * GW <= (int64_t(1) << 28), "image_grid: a ", GH, "x", GW, " grid is too large");
  Tensor out = Tensor::empty({C, GH, GW}, DType::float32, kCPU);
  float* o = out.data<float>();
  std::fill(o, o + out.numel(), opt.border_value);

  float glo = std::numeric_limits<float>::infinity(), ghi = -glo;
  if (opt.norm == TileNorm::global)
    for (const Tensor& t : tiles)
      for (int64_t i = 0; i < t.numel(); ++i)
        if (std::isfinite(t.data<float>()[i]))
          glo = std::min(glo, t.data<float>()[i]), ghi = std::max(ghi, t.data<float>()[i]);
  for (int64_t k = 0; k < K; ++k) {
    const Tensor& t = tiles[k];
    const float* s = t.data<float>();
    const int64_t tc = t.ndim() == 3 ? t.size(0) : 1;
    float lo = glo, hi = ghi;
    if (opt.norm == TileNorm::per_tile || opt.norm == TileNorm::per_tile_signed) {
      lo = std::numeric_limits<float>::infinity(), hi = -lo;
      for (int64_t i = 0; i < t.numel(); ++i)
        if (std::isfinite(s[i])) lo = std::min(lo, s[i]), hi = std::max(hi, s[i]);
    }
    float scale = 1.0f, shift = 0.0f;  // v * scale + shift
    if (opt.norm == TileNorm::per_tile_signed) {
      const float m = std::max(std::fabs(lo), std::fabs(hi));
      scale = m > 0 && std::isfinite(m) ? 0.5f / m : 0.0f;
      shift = 0.5f;
    } else if (opt.norm != TileNorm::clamp) {
      scale = hi > lo ? 1.0f / (hi - lo) : 0.0f;
      shift = hi > lo ? -lo * scale : 0.5f;
    }
    const int64_t oy = b + (k / cols) * (th + b), ox = b + (k % cols) * (tw + b);
    for (int64_t c = 0; c < C; ++c) {
      const float* src = s + (tc == 1 ? 0 : c) * H * W;
      for (int64_t y = 0; y < th; ++y)
        for (int64_t x = 0; x < tw; ++x) {
          float v = src[(y / opt.scale) * W + x / opt.scale] * scale + shift;
          v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
          o[(c * GH + oy + y) * GW + ox + x] = v;
        }
    }
  }
  return out;
}

Tensor image_grid(const Tensor& batch, const GridOptions& options) {
  FOVEA_CHECK(batch.defined() && batch.dtype() == DType::float32 && (batch.ndim() == 3 || batch.ndim() == 4),
              "image_grid: argument 'batch' must be float32 [K,H,W] or [K,C,H,W], got ",
              batch.defined() ? batch.str() : "undefined");
  std::vector<Tensor> tiles;
  const int64_t K = batch.size(0), H = batch.size(-2), W = batch.size(-1);
  const int64_t C = batch.ndim() == 4 ? batch.size(1) : 1;
  if (C == 1 || C == 3) {
    for (int64_t k = 0; k < K; ++k) tiles.push_back(batch.narrow(k, 1).reshape({C, H, W}));
  } else {
    const Tensor flat = batch.reshape({K * C, H, W});
    for (int64_t k = 0; k < K * C; ++k) tiles.push_back(flat.narrow(k, 1).reshape({H, W}));
  }
  return image_grid(tiles, options);
}

}  // namespace fovea
