// Generic test helpers on raw float arrays / std::vector (used by the reference and kernel tests):
// deterministic random fills, NaN poisoning and the "every element written" check, relative L2
// error that never lets NaN pass, and a central finite-difference gradient checker.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace fovea::test {

// ---------------------------------------------------------------- random inputs

// n floats uniform in [lo, hi), reproducible from seed.
inline std::vector<float> random_vector(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// n integer-valued floats in [lo, hi]: sums of products stay exact in float32 while small.
inline std::vector<float> random_integers(size_t n, uint64_t seed, int lo = -3, int hi = 3) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = float(dist(rng));
  return v;
}

// n values with |x| in [min_abs, max_abs] and random sign: keeps inputs off the kink of relu-like ops.
inline std::vector<float> random_away_from_zero(size_t n, uint64_t seed, float min_abs = 0.05f, float max_abs = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> mag(min_abs, max_abs);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(n);
  for (float& x : v) x = sign(rng) ? mag(rng) : -mag(rng);
  return v;
}

// A random permutation of n distinct values spaced `gap` apart, centred on 0: no ties anywhere
// (for max pooling, whose gradient has a kink where two window values are equal).
inline std::vector<float> random_distinct(size_t n, uint64_t seed, float gap = 0.01f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (float(i) - 0.5f * float(n)) * gap;
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

// n labels in [0, classes).
inline std::vector<int64_t> random_labels(size_t n, int64_t classes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> dist(0, classes - 1);
  std::vector<int64_t> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// ---------------------------------------------------------------- poisoning

// All bytes 0xFF: NaN for float/double, -1 for signed integers.
template <typename T>
void poison(T* p, size_t n) {
  std::memset(static_cast<void*>(p), 0xFF, n * sizeof(T));
}
template <typename T>
void poison(std::vector<T>& v) {
  poison(v.data(), v.size());
}

// Success iff no element of p[0..n) still holds the poison pattern (or is otherwise NaN).
template <typename T>
::testing::AssertionResult all_written(const T* p, size_t n, const char* what = "output") {
  size_t bad = 0, first = n;
  for (size_t i = 0; i < n; ++i) {
    bool poisoned;
    if constexpr (std::is_floating_point_v<T>) {
      poisoned = std::isnan(p[i]);
    } else {
      T pattern;
      std::memset(static_cast<void*>(&pattern), 0xFF, sizeof(T));
      poisoned = p[i] == pattern;
    }
    if (poisoned) {
      if (!bad) first = i;
      ++bad;
    }
  }
  if (!bad) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << bad << " of " << n
                                       << " elements not written (NaN/poison), first at index " << first;
}
template <typename T>
::testing::AssertionResult all_written(const std::vector<T>& v, const char* what = "output") {
  return all_written(v.data(), v.size(), what);
}

// ---------------------------------------------------------------- comparisons

// ||a - ref|| / ||ref|| in double; +inf when any a[i] or ref[i] is not finite (NaN never passes).
// When ref is all zeros, returns ||a|| (absolute).
template <typename A, typename B>
double rel_l2(const A* a, const B* ref, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double x = double(a[i]), r = double(ref[i]);
    if (!std::isfinite(x) || !std::isfinite(r)) return std::numeric_limits<double>::infinity();
    num += (x - r) * (x - r);
    den += r * r;
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}
template <typename A, typename B>
double rel_l2(const std::vector<A>& a, const std::vector<B>& ref) {
  EXPECT_EQ(a.size(), ref.size()) << "rel_l2: size mismatch";
  return rel_l2(a.data(), ref.data(), std::min(a.size(), ref.size()));
}

// Success iff rel_l2(a, ref) <= tol; the message gives the error and the worst element.
template <typename A, typename B>
::testing::AssertionResult close_l2(const A* a, const B* ref, size_t n, double tol, const std::string& what = "") {
  const double e = rel_l2(a, ref, n);
  if (e <= tol) return ::testing::AssertionSuccess();
  size_t worst = 0;
  double wd = -1.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(double(a[i]) - double(ref[i]));
    if (!(d <= wd)) wd = d, worst = i;  // NaN counts as worst
  }
  return ::testing::AssertionFailure() << what << " rel L2 " << e << " > " << tol << "; worst index " << worst
                                       << ": got " << double(a[worst]) << " want " << double(ref[worst]);
}
template <typename A, typename B>
::testing::AssertionResult close_l2(const std::vector<A>& a, const std::vector<B>& ref, double tol,
                                    const std::string& what = "") {
  if (a.size() != ref.size())
    return ::testing::AssertionFailure() << what << " size " << a.size() << " != " << ref.size();
  return close_l2(a.data(), ref.data(), a.size(), tol, what);
}

// sum_i y[i] * g[i] in double: the scalar "loss" whose gradient w.r.t. y is g, used by gradient checks.
inline double weighted_sum(const float* y, const float* g, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += double(y[i]) * double(g[i]);
  return s;
}
inline double weighted_sum(const std::vector<float>& y, const std::vector<float>& g) {
  return weighted_sum(y.data(), g.data(), std::min(y.size(), g.size()));
}

// ---------------------------------------------------------------- finite differences

struct GradCheckOptions {
  double step = 1e-2;       // central difference half-step h
  double tolerance = 2e-3;  // on |numeric - analytic| / max(|numeric|, |analytic|, 1) (Caffe's scaling)
  size_t max_checks = 400;  // check at most this many elements (an evenly spaced subset)
};

// Compares analytic[i] with (loss(x + h e_i) - loss(x - h e_i)) / 2h, where loss() reads x (the
// vector is perturbed in place and restored). The loss is a double computed from the float op,
// e.g. weighted_sum(forward(x), g); analytic is what the backward gives for that g.
inline ::testing::AssertionResult check_gradient(std::vector<float>& x, const std::function<double()>& loss,
                                                 const std::vector<float>& analytic, const GradCheckOptions& o = {},
                                                 const std::string& what = "gradient") {
  if (x.size() != analytic.size())
    return ::testing::AssertionFailure() << what << ": analytic size " << analytic.size() << " != input size "
                                         << x.size();
  const size_t n = x.size();
  const size_t stride = std::max<size_t>(1, (n + o.max_checks - 1) / std::max<size_t>(1, o.max_checks));
  std::ostringstream errors;
  size_t bad = 0, checked = 0;
  double worst = 0.0;
  for (size_t i = 0; i < n; i += stride) {
    const float saved = x[i];
    x[i] = float(double(saved) + o.step);
    const double hi_x = double(x[i]);
    const double lp = loss();
    x[i] = float(double(saved) - o.step);
    const double lo_x = double(x[i]);
    const double lm = loss();
    x[i] = saved;
    const double numeric = (lp - lm) / (hi_x - lo_x);  // the step actually taken after float rounding
    const double a = double(analytic[i]);
    const double scale = std::max({std::fabs(numeric), std::fabs(a), 1.0});
    const double err = std::fabs(numeric - a) / scale;
    ++checked;
    if (!(err <= o.tolerance)) {
      if (bad < 5)
        errors << "\n  [" << i << "] analytic " << a << " numeric " << numeric << " (scaled error " << err << ")";
      ++bad;
    }
    if (!(err <= worst)) worst = err;
  }
  if (!bad) return ::testing::AssertionSuccess() << what << ": " << checked << " checks, worst " << worst;
  return ::testing::AssertionFailure() << what << ": " << bad << " of " << checked << " elements exceed tolerance "
                                       << o.tolerance << errors.str();
}

// ---------------------------------------------------------------- errors

// The message of the fovea::Error f() throws, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Success iff f() throws fovea::Error whose message contains every one of `parts` (the op, the
// argument, the value...).
inline ::testing::AssertionResult throws_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string m = e.what();
    for (const auto& s : parts)
      if (m.find(s) == std::string::npos) return ::testing::AssertionFailure() << "message lacks '" << s << "': " << m;
    return ::testing::AssertionSuccess() << m;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-fovea exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "no exception thrown";
}

}  // namespace fovea::test
