#include "layers/data/loader.h"

#include <chrono>
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

BatchLoader::BatchLoader(const Dataset& ds, const LoaderOptions& options) : ds_(ds), opt_(options) {
  ds_.validate();
  FOVEA_CHECK(opt_.batch_size > 0, "BatchLoader: argument 'batch_size' must be > 0, got ", opt_.batch_size);
  FOVEA_CHECK(opt_.prefetch >= 0 && opt_.prefetch <= 64, "BatchLoader: argument 'prefetch' must be in [0, 64], got ",
              opt_.prefetch);
  FOVEA_CHECK(opt_.normalization.empty() || (int64_t(opt_.normalization.mean.size()) == ds_.images.size(1) &&
                                             opt_.normalization.stddev.size() == opt_.normalization.mean.size()),
              "BatchLoader: normalisation has ", opt_.normalization.mean.size(), " channels, dataset '", ds_.name,
              "' has ", ds_.images.size(1));
  FOVEA_CHECK((!opt_.augment.any() && !opt_.device_augment) || ds_.is_image(),
              "BatchLoader: augmentation needs images [N,C,H,W]; dataset '", ds_.name, "' has ", ds_.images.str());
  Shape s = ds_.images.shape();
  s[0] = opt_.batch_size;
  slots_.resize(size_t(opt_.prefetch) + 1);
  for (Slot& slot : slots_) {
    slot.images = Tensor::empty(s, opt_.device_augment ? ds_.images.dtype() : DType::float32, kCPU);
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

void BatchLoader::fill(Slot& slot, int64_t epoch, int64_t b, const std::vector<int64_t>& order) {
  if (opt_.device_augment) {
    gather_batch(ds_, order.data() + b * opt_.batch_size, batch_rows(b), opt_.augment, opt_.seed, uint64_t(epoch),
                 slot.images.raw_data(), reinterpret_cast<Affine*>(slot.warps.data<float>()),
                 slot.labels.data<int64_t>());
    return;
  }
  prepare_batch(ds_, order.data() + b * opt_.batch_size, batch_rows(b), opt_.augment, opt_.normalization, opt_.seed,
                uint64_t(epoch), slot.images.data<float>(), slot.labels.data<int64_t>());
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
    fill(s, epoch_, b, *order_);
    lk.lock();
    const double dt = seconds_since(t0);
    stats_.prepare_seconds += dt;
    stats_.wait_seconds += dt;
  } else {
    cv_.wait(lk, [&] { return error_ || (s.ready && s.generation == generation_ && s.batch == b); });
    stats_.wait_seconds += seconds_since(t0);
    if (error_) std::rethrow_exception(error_);
    s.ready = false;  // held by the caller until its next call
  }
  const int64_t rows = batch_rows(b);
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
    try {
      fill(s, epoch, b, *order);
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
      s.ready = true;
      s.batch = b;
      s.generation = generation;
      produce_next_ = b + 1;
    }
    cv_.notify_all();
  }
}

}  // namespace fovea::data
