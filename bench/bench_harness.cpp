#include "bench/bench_harness.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/build_info.h"
#include "core/error.h"
#include "core/plot.h"
#include "layers/cudnn/cudnn_backend.h"

namespace fovea::bench {

Stats summarize(std::vector<double> ms) {
  Stats s;
  s.reps = int(ms.size());
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  auto quantile = [&](double q) {  // linear interpolation between order statistics
    const double pos = q * double(ms.size() - 1);
    const size_t lo = size_t(std::floor(pos)), hi = std::min(lo + 1, ms.size() - 1);
    return ms[lo] + (pos - double(lo)) * (ms[hi] - ms[lo]);
  };
  s.median_ms = quantile(0.5);
  s.p10_ms = quantile(0.1);
  s.p90_ms = quantile(0.9);
  s.min_ms = ms.front();
  s.max_ms = ms.back();
  return s;
}

namespace {
double process_cpu_ms() {
  timespec t{};
  FOVEA_CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) == 0,
              "bench: clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
  return double(t.tv_sec) * 1e3 + double(t.tv_nsec) * 1e-6;
}
}  // namespace

Stats time_runs(const Stream& stream, const TimingOptions& o, const std::function<void(int)>& fn) {
  FOVEA_CHECK(o.reps >= 1, "bench: argument 'reps' must be >= 1, got ", o.reps);
  FOVEA_CHECK(o.rotate >= 1, "bench: argument 'rotate' must be >= 1, got ", o.rotate);
  int buf = 0;
  for (int i = 0; i < o.warmup; ++i) fn(buf++ % o.rotate);
  stream.synchronize();
  Event start(stream.device()), stop(stream.device());
  std::vector<double> ms;
  ms.reserve(size_t(o.reps));
  FOVEA_CHECK(!o.cpu_time || stream.device().type == DeviceType::cpu, "bench: --cpu-time needs device cpu, got ",
              stream.device().str());
  for (int i = 0; i < o.reps; ++i) {
    const double cpu0 = o.cpu_time ? process_cpu_ms() : 0;
    start.record(stream);
    fn(buf++ % o.rotate);
    stop.record(stream);
    stop.synchronize();
    ms.push_back(o.cpu_time ? process_cpu_ms() - cpu0 : stop.elapsed_ms_since(start));
  }
  return summarize(std::move(ms));
}

double Roofline::fraction(double flops, double bytes, double ms) const {
  if (ms <= 0) return 0;
  double bound_ms = 0;
  if (peak_tflops() > 0 && flops > 0) bound_ms = std::max(bound_ms, flops / (peak_tflops() * 1e12) * 1e3);
  if (copy_gbs > 0 && bytes > 0) bound_ms = std::max(bound_ms, bytes / (copy_gbs * 1e9) * 1e3);
  return bound_ms / ms;
}

namespace {

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  return "unknown CPU";
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

bool is_vendor(const std::string& impl) {
  return impl.rfind("cudnn", 0) == 0 || impl.rfind("cublas", 0) == 0;
}

std::string fmt_num(double v, int prec = 3) {
  if (v == 0) return "-";
  return fmt::format("{:.{}g}", v, prec);
}

}  // namespace

Environment describe_environment(Device d) {
  Environment e;
  const BuildInfo& b = build_info();
  e.device = d.str();
  e.git_revision = b.git_revision;
  e.build_type = b.build_type;
  e.fovea_version = b.version;
  e.date_utc = utc_now();
  e.host_threads = int(std::thread::hardware_concurrency());
  e.cudnn = b.cudnn ? cudnn::runtime_version() : "not built";
  if (d.type == DeviceType::cuda) {
    e.driver = cuda_driver_version();
    e.runtime = cuda_runtime_version();
    const std::vector<GpuInfo> gpus = gpu_infos();
    if (size_t(d.index) < gpus.size()) {
      const GpuInfo& g = gpus[size_t(d.index)];
      e.device_name = fmt::format("{} (sm_{}{})", g.name, g.cc_major, g.cc_minor);
      e.sm_count = g.sm_count;
      e.clocks =
          fmt::format("SM {} MHz; memory bandwidth from clocks {:.0f} GB/s", g.clock_mhz, g.memory_bandwidth_gbs);
    }
  } else {
    e.device_name = cpu_model_name();
    e.driver = "n/a (host)";
    e.runtime = "n/a (host)";
    e.clocks = "n/a (host)";
  }
  return e;
}

void finish_rows(std::vector<Row>& rows, const Roofline& roofline) {
  std::map<std::pair<std::string, std::string>, double> best_vendor;
  for (Row& r : rows) {
    if (!r.timed || r.stats.median_ms <= 0) continue;
    const double s = r.stats.median_ms * 1e-3;
    r.tflops = r.flops / s * 1e-12;
    r.gbs = r.bytes / s * 1e-9;
    r.roofline = roofline.fraction(r.flops, r.bytes, r.stats.median_ms);
    if (is_vendor(r.impl)) {
      auto [it, fresh] = best_vendor.emplace(std::make_pair(r.op, r.shape), r.stats.median_ms);
      if (!fresh) it->second = std::min(it->second, r.stats.median_ms);
    }
  }
  for (Row& r : rows) {
    if (!r.timed) continue;
    auto it = best_vendor.find({r.op, r.shape});
    if (it != best_vendor.end()) r.vs_vendor = it->second / r.stats.median_ms;
  }
}

namespace {

std::vector<std::string> header_lines(const Environment& e) {
  return {
      fmt::format("fovea {} (git {}, {} build) {}", e.fovea_version, e.git_revision, e.build_type, e.date_utc),
      fmt::format("device {}: {}; SMs {}; host threads {}", e.device, e.device_name, e.sm_count, e.host_threads),
      fmt::format("driver {}; runtime {}; cuDNN {}; clocks: {}", e.driver, e.runtime, e.cudnn, e.clocks),
      fmt::format("roofline (measured): copy {} GB/s [{}]; sgemm {} TFLOP/s [{}]", fmt_num(e.roofline.copy_gbs),
                  e.roofline.copy_how.empty() ? "not measured" : e.roofline.copy_how, fmt_num(e.roofline.sgemm_tflops),
                  e.roofline.sgemm_how.empty() ? "not measured" : e.roofline.sgemm_how),
      e.roofline.fma_tflops > 0 ? fmt::format("FMA peak (measured, the roofline's FLOP/s ceiling): {} TFLOP/s [{}]",
                                              fmt_num(e.roofline.fma_tflops), e.roofline.fma_how)
                                : std::string("FLOP/s ceiling of the roofline: the sgemm above"),
      fmt::format("timing: median of {} reps after {} warm-up, {} rotating input buffers", e.timing.reps,
                  e.timing.warmup, e.timing.rotate),
  };
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::string format_table(const std::vector<Row>& rows, const Environment& env) {
  std::string out;
  for (const std::string& l : header_lines(env)) out += l + "\n";
  std::vector<std::vector<std::string>> cells;
  cells.push_back(
      {"op", "shape", "impl", "verify", "median ms", "spread", "TFLOP/s", "GB/s", "roofline", "x vendor", "img/s"});
  for (const Row& r : rows) {
    const bool t = r.timed;
    cells.push_back({r.op, r.shape, r.impl, r.verify, t ? fmt::format("{:.4g}", r.stats.median_ms) : "-",
                     t ? fmt::format("{:.0f}%", r.stats.spread() * 100) : "-", t ? fmt_num(r.tflops) : "-",
                     t ? fmt_num(r.gbs) : "-", t && r.roofline > 0 ? fmt::format("{:.0f}%", r.roofline * 100) : "-",
                     t ? fmt_num(r.vs_vendor) : "-", r.images_per_s > 0 ? fmt::format("{:.1f}", r.images_per_s) : "-"});
  }
  std::vector<size_t> width(cells[0].size(), 0);
  for (const auto& row : cells)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  for (size_t k = 0; k < cells.size(); ++k) {
    std::string line;
    for (size_t i = 0; i < cells[k].size(); ++i) {
      const bool right = i >= 4;  // numbers right-aligned
      line += right ? fmt::format("{:>{}}", cells[k][i], width[i]) : fmt::format("{:<{}}", cells[k][i], width[i]);
      line += i + 1 < cells[k].size() ? "  " : "";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (k == 0) {
      size_t total = 0;
      for (size_t w : width) total += w + 2;
      out += std::string(total - 2, '-') + "\n";
    }
  }
  for (const Row& r : rows)
    if (!r.note.empty()) out += fmt::format("note: {} {} {}: {}\n", r.op, r.shape, r.impl, r.note);
  return out;
}

std::string format_csv(const std::vector<Row>& rows, const Environment& env) {
  std::string out;
  for (const std::string& l : header_lines(env)) out += "# " + l + "\n";
  out +=
      "suite,op,shape,impl,verify,timed,median_ms,p10_ms,p90_ms,min_ms,max_ms,reps,flops,bytes,tflops,gbs,"
      "roofline_fraction,vs_vendor,images_per_s,device,device_name,driver,git_revision,note\n";
  for (const Row& r : rows)
    out += fmt::format(
        "{},{},{},{},{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.4g},{:.4g},"
        "{:.6g},{},{},{},{},{}\n",
        csv_field(r.suite), csv_field(r.op), csv_field(r.shape), csv_field(r.impl), csv_field(r.verify),
        r.timed ? 1 : 0, r.stats.median_ms, r.stats.p10_ms, r.stats.p90_ms, r.stats.min_ms, r.stats.max_ms,
        r.stats.reps, r.flops, r.bytes, r.tflops, r.gbs, r.roofline, r.vs_vendor, r.images_per_s, csv_field(env.device),
        csv_field(env.device_name), csv_field(env.driver), csv_field(env.git_revision), csv_field(r.note));
  return out;
}

std::string format_json(const std::vector<Row>& rows, const Environment& env) {
  nlohmann::json j;
  j["environment"] = {
      {"device", env.device},
      {"device_name", env.device_name},
      {"sm_count", env.sm_count},
      {"host_threads", env.host_threads},
      {"driver", env.driver},
      {"runtime", env.runtime},
      {"cudnn", env.cudnn},
      {"clocks", env.clocks},
      {"git_revision", env.git_revision},
      {"build_type", env.build_type},
      {"fovea_version", env.fovea_version},
      {"date_utc", env.date_utc},
      {"command_line", env.command_line},
      {"timing", {{"warmup", env.timing.warmup}, {"reps", env.timing.reps}, {"rotate", env.timing.rotate}}},
      {"roofline",
       {{"copy_gbs", env.roofline.copy_gbs},
        {"copy_how", env.roofline.copy_how},
        {"sgemm_tflops", env.roofline.sgemm_tflops},
        {"sgemm_how", env.roofline.sgemm_how},
        {"fma_tflops", env.roofline.fma_tflops},
        {"fma_how", env.roofline.fma_how}}}};
  nlohmann::json arr = nlohmann::json::array();
  for (const Row& r : rows)
    arr.push_back({{"suite", r.suite},
                   {"op", r.op},
                   {"shape", r.shape},
                   {"impl", r.impl},
                   {"verify", r.verify},
                   {"timed", r.timed},
                   {"median_ms", r.stats.median_ms},
                   {"p10_ms", r.stats.p10_ms},
                   {"p90_ms", r.stats.p90_ms},
                   {"min_ms", r.stats.min_ms},
                   {"max_ms", r.stats.max_ms},
                   {"reps", r.stats.reps},
                   {"flops", r.flops},
                   {"bytes", r.bytes},
                   {"tflops", r.tflops},
                   {"gbs", r.gbs},
                   {"roofline_fraction", r.roofline},
                   {"vs_vendor", r.vs_vendor},
                   {"images_per_s", r.images_per_s},
                   {"note", r.note}});
  j["rows"] = arr;
  return j.dump(2) + "\n";
}

void write_chart(const std::string& path, const std::vector<Row>& rows, const Environment& env) {
  // x: index of each (op, shape) of the kernel suite in order of appearance; one series per family
  // (ours / cudnn / cublas / reference), the best version of that family at each point.
  std::vector<std::pair<std::string, std::string>> keys;
  std::map<std::pair<std::string, std::string>, int> index;
  std::map<std::string, std::map<int, double>> best;  // family -> x -> TFLOP/s
  for (const Row& r : rows) {
    if (r.suite != "kernels" || !r.timed || r.tflops <= 0) continue;
    auto key = std::make_pair(r.op, r.shape);
    if (!index.count(key)) {
      index[key] = int(keys.size());
      keys.push_back(key);
    }
    const std::string family = r.impl.substr(0, r.impl.find(':'));
    double& v = best[family][index[key]];
    v = std::max(v, r.tflops);
  }
  std::vector<PlotSeries> series;
  int color = 0;
  for (auto& [family, points] : best) {
    PlotSeries s;
    s.label = family;
    s.color = plot_palette(color++);
    for (auto& [x, y] : points) {
      s.x.push_back(x);
      s.y.push_back(y);
    }
    series.push_back(std::move(s));
  }
  PlotOptions o;
  o.width = 1000;
  o.height = 560;
  o.x_label = "(op, shape) index: see the CSV/table order";
  o.y_label = "TFLOP/s (best version, log scale)";
  o.log_y = true;  // ours, cuDNN and the reference differ by orders of magnitude
  const std::string title =
      fmt::format("fovea bench {} {} git {}", env.device, env.device_name.substr(0, 40), env.git_revision);
  if (series.empty()) {  // still a valid chart: says there was nothing to draw
    PlotSeries s;
    s.label = "no timed rows";
    s.x = {0, 1};
    s.y = {0, 0};
    series.push_back(s);
  }
  plot_curves(path, title, series, o);
}

}  // namespace fovea::bench
