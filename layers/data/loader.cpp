#include "layers/data/loader.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <numeric>

#include "core/device.h"

#if FOVEA_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace fovea::data {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

// Threads that run fn(0..n-1) of one job at a time, with the calling thread helping; run() returns when every
// call has returned. Which thread runs which i is left to timing: fn(i) must write only i's own output.
class DecodePool {
 public:
  explicit DecodePool(int helpers) {
    for (int i = 0; i < helpers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~DecodePool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  void run(int64_t n, const std::function<void(int64_t)>& fn) {
    if (threads_.empty() || n <= 1) {
      for (int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      active_ = threads_.size();
      ++job_;
    }
    cv_.notify_all();
    drain(fn, n);
    std::unique_lock<std::mutex> lk(mu_);
    done_.wait(lk, [&] { return active_ == 0; });
    fn_ = nullptr;
  }

 private:
  void drain(const std::function<void(int64_t)>& fn, int64_t n) {
    for (int64_t i; (i = next_.fetch_add(1)) < n;) fn(i);
  }
  void work() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || job_ != seen; });
      if (stop_) return;
      seen = job_;
      const std::function<void(int64_t)>* fn = fn_;
      const int64_t n = n_;
      lk.unlock();
      drain(*fn, n);
      lk.lock();
      if (--active_ == 0) done_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_;
  bool stop_ = false;
  uint64_t job_ = 0;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  size_t active_ = 0;
};

BatchLoader::BatchLoader(const Dataset& ds, const LoaderOptions& options) : ds_(ds), opt_(options) {
  ds_.validate();
  FOVEA_CHECK(opt_.batch_size > 0, "BatchLoader: argument 'batch_size' must be > 0, got ", opt_.batch_size);
  FOVEA_CHECK(opt_.prefetch >= 0 && opt_.prefetch <= 64, "BatchLoader: argument 'prefetch' must be in [0, 64], got ",
              opt_.prefetch);
  FOVEA_CHECK(opt_.normalization.empty() || (int64_t(opt_.normalization.mean.size()) == ds_.channels() &&
                                             opt_.normalization.stddev.size() == opt_.normalization.mean.size()),
              "BatchLoader: normalisation has ", opt_.normalization.mean.size(), " channels, dataset '", ds_.name,
              "' has ", ds_.channels());
  FOVEA_CHECK((!opt_.augment.any() && !opt_.device_augment) || ds_.is_image(),
              "BatchLoader: augmentation needs images [N,C,H,W]; dataset '", ds_.name, "' has ", ds_.images.str());
  FOVEA_CHECK(opt_.decode_threads >= 0 && opt_.decode_threads <= 256,
              "BatchLoader: argument 'decode_threads' must be in [0, 256], got ", opt_.decode_threads);
  std::vector<int64_t> dims = ds_.sample_shape().vec();
  dims.insert(dims.begin(), opt_.batch_size);
  const Shape s(dims);
  const DType stored = ds_.from_files() ? DType::uint8 : ds_.images.dtype();
  slots_.resize(size_t(opt_.prefetch) + 1);
  for (Slot& slot : slots_) {
    slot.images = Tensor::empty(s, opt_.device_augment ? stored : DType::float32, kCPU);
    if (ds_.from_files() && !opt_.device_augment) slot.raw = Tensor::empty(s, DType::uint8, kCPU);
    slot.labels = Tensor::empty({opt_.batch_size}, DType::int64, kCPU);
    if (opt_.device_augment) {
      static_assert(sizeof(Affine) == 6 * sizeof(float));
      slot.warps = Tensor::empty({opt_.batch_size, 6}, DType::float32, kCPU);
    }
  }
#if FOVEA_HAVE_CUDA
  // Page-locked buffers make the trainer's host-to-GPU copies faster; failure only costs speed.
  if (opt_.pin_memory && cuda_available())
    for (Slot& slot : slots_)
      for (Tensor* t : {&slot.images, &slot.labels, &slot.warps}) {
        if (!t->defined()) continue;
        if (cudaHostRegister(t->raw_data(), t->nbytes(), cudaHostRegisterDefault) == cudaSuccess)
          pinned_.push_back(t->raw_data());
        else
          (void)cudaGetLastError();
      }
#endif
  if (ds_.from_files()) {
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = opt_.decode_threads > 0 ? opt_.decode_threads : std::min(cores, 8);
    pool_ = std::make_unique<DecodePool>(threads - 1);
  }
  if (opt_.prefetch > 0) thread_ = std::thread([this] { producer(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
#if FOVEA_HAVE_CUDA
  for (void* p : pinned_) (void)cudaHostUnregister(p);
#endif
}

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t n = ds_.size(), b = opt_.batch_size;
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

int64_t BatchLoader::batch_rows(int64_t b) const {
  return std::min(opt_.batch_size, ds_.size() - b * opt_.batch_size);
}

int64_t BatchLoader::fill(Slot& slot, int64_t epoch, int64_t b, const std::vector<int64_t>& order) {
  if (ds_.from_files()) return fill_files(slot, epoch, b, order);
  slot.rows = batch_rows(b);
  if (opt_.device_augment) {
    gather_batch(ds_, order.data() + b * opt_.batch_size, batch_rows(b), opt_.augment, opt_.seed, uint64_t(epoch),
                 slot.images.raw_data(), reinterpret_cast<Affine*>(slot.warps.data<float>()),
                 slot.labels.data<int64_t>());
    return 0;
  }
  prepare_batch(ds_, order.data() + b * opt_.batch_size, batch_rows(b), opt_.augment, opt_.normalization, opt_.seed,
                uint64_t(epoch), slot.images.data<float>(), slot.labels.data<int64_t>());
  return 0;
}

int64_t BatchLoader::fill_files(Slot& slot, int64_t epoch, int64_t b, const std::vector<int64_t>& order) {
  const int64_t n = batch_rows(b), S = ds_.file_transform.size, sample = 3 * S * S;
  const int64_t* idx = order.data() + b * opt_.batch_size;
  uint8_t* raw = opt_.device_augment ? slot.images.data<uint8_t>() : slot.raw.data<uint8_t>();
  std::vector<char> ok(size_t(n), 0);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  pool_->run(n, [&](int64_t i) {
    try {
      ok[size_t(i)] = decode_file_sample(ds_, idx[i], opt_.seed, uint64_t(epoch), raw + i * sample);
    } catch (...) {
      errors[size_t(i)] = std::current_exception();
    }
  });
  for (const std::exception_ptr& e : errors)  // the first bad file in batch order, whatever the timing
    if (e) std::rethrow_exception(e);
  // Skipped files leave the batch: the good rows move up, in order.
  std::vector<int64_t> ids;
  int64_t* labels = slot.labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (!ok[size_t(i)]) continue;
    const int64_t r = int64_t(ids.size());
    if (r != i) std::memmove(raw + r * sample, raw + i * sample, size_t(sample));
    labels[r] = ds_.labels.data<int64_t>()[idx[i]];
    ids.push_back(idx[i]);
  }
  const int64_t rows = int64_t(ids.size());
  FOVEA_CHECK(rows > 0, "folder dataset '", ds_.name, "': all ", n, " images of batch ", b, " of epoch ", epoch,
              " are unreadable (the first is '", (*ds_.files)[size_t(idx[0])], "'); nothing is left to train on");
  if (opt_.device_augment) {
    Affine* warps = reinterpret_cast<Affine*>(slot.warps.data<float>());
    for (int64_t r = 0; r < rows; ++r)
      warps[r] = opt_.augment.any() ? augment_affine(opt_.augment, S, S, opt_.seed, uint64_t(epoch), ids[size_t(r)])
                                    : Affine{};
  } else {
    prepare_gathered(raw, rows, 3, S, S, ids.data(), opt_.augment, opt_.normalization, opt_.seed, uint64_t(epoch),
                     slot.images.data<float>());
  }
  slot.rows = rows;
  return n - rows;
}

void BatchLoader::start_epoch(int64_t epoch) {
  FOVEA_CHECK(epoch >= 0, "BatchLoader::start_epoch: argument 'epoch' must be >= 0, got ", epoch);
  std::vector<int64_t> order;
  if (opt_.shuffle) {
    order = permutation(ds_.size(), opt_.seed, uint64_t(epoch));
  } else {
    order.resize(size_t(ds_.size()));
    std::iota(order.begin(), order.end(), int64_t(0));
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::make_shared<const std::vector<int64_t>>(std::move(order));
    produce_next_ = consume_next_ = 0;
    for (Slot& s : slots_) s.ready = false;
    error_ = nullptr;
    active_ = true;
  }
  cv_.notify_all();
}

bool BatchLoader::next(Batch& out) {
  std::unique_lock<std::mutex> lk(mu_);
  FOVEA_CHECK(active_, "BatchLoader::next: call start_epoch first");
  if (consume_next_ >= batches_per_epoch()) return false;
  const int64_t b = consume_next_;
  Slot& s = slots_[size_t(b) % slots_.size()];
  const auto t0 = std::chrono::steady_clock::now();
  if (opt_.prefetch == 0) {
    lk.unlock();  // the single-threaded path: prepare here
    const int64_t skipped = fill(s, epoch_, b, *order_);
    lk.lock();
    stats_.skipped_images += skipped;
    const double dt = seconds_since(t0);
    stats_.prepare_seconds += dt;
    stats_.wait_seconds += dt;
  } else {
    cv_.wait(lk, [&] { return error_ || (s.ready && s.generation == generation_ && s.batch == b); });
    stats_.wait_seconds += seconds_since(t0);
    if (error_) std::rethrow_exception(error_);
    s.ready = false;  // held by the caller until its next call
  }
  const int64_t rows = s.rows;
  out.images = s.images.narrow(0, rows);
  out.labels = s.labels.narrow(0, rows);
  out.warps = s.warps.defined() ? s.warps.narrow(0, rows) : Tensor();
  out.epoch = epoch_;
  out.index = b;
  ++consume_next_;
  ++stats_.batches;
  lk.unlock();
  cv_.notify_all();
  return true;
}

LoaderStats BatchLoader::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void BatchLoader::producer() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] {
      return stop_ || (active_ && !error_ && produce_next_ < batches_per_epoch() &&
                       produce_next_ < consume_next_ + opt_.prefetch);
    });
    if (stop_) return;
    const int64_t b = produce_next_, epoch = epoch_;
    const uint64_t generation = generation_;
    const std::shared_ptr<const std::vector<int64_t>> order = order_;
    Slot& s = slots_[size_t(b) % slots_.size()];
    lk.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    std::exception_ptr err;
    int64_t skipped = 0;
    try {
      skipped = fill(s, epoch, b, *order);
    } catch (...) {
      err = std::current_exception();
    }
    const double dt = seconds_since(t0);
    lk.lock();
    stats_.prepare_seconds += dt;
    if (generation != generation_) continue;  // start_epoch() abandoned this batch
    if (err) {
      error_ = err;
    } else {
      stats_.skipped_images += skipped;
      s.ready = true;
      s.batch = b;
      s.generation = generation;
      produce_next_ = b + 1;
    }
    cv_.notify_all();
  }
}

}  // namespace fovea::data
