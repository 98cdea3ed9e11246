// A background batch loader: one thread gathers, augments and normalises the next batches into a
// small ring of reused host buffers while the current training step runs. Batch b of epoch e is a
// pure function of (dataset, options, e, b): the thread only changes when it is computed, so results
// are the same with and without prefetching and whatever the timing.
//
// A folder dataset (Dataset::files) is decoded per batch: the thread hands the batch's files to a pool of
// decode threads, each sample into its own row of the batch (decode_file_sample, whose random crop and flip
// are functions of (seed, epoch, sample)), so a batch is the same bytes whatever the number of threads. The
// ring of prefetched batches is the bounded queue: at most `prefetch` decoded batches wait in memory.
#pragma once
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "layers/data/data.h"

namespace fovea::data {

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;          // permutation(N, seed, epoch) per epoch; else 0..N-1
  bool drop_last = false;       // drop a last, smaller batch
  Augment augment;              // none by default (evaluation)
  Normalization normalization;  // empty: uint8 becomes [0,1], float stays as it is
  uint64_t seed = 0;
  int prefetch = 2;         // batches prepared ahead (the queue bound); 0: prepared in next()
  bool pin_memory = false;  // page-lock the buffers (cudaHostRegister) when a GPU is usable
  // Leave warping and normalisation to the training device: batches hold the raw pixels (the dataset's
  // dtype) and one warp per image (Batch::warps) for ops::augment_forward. Image datasets only.
  bool device_augment = false;
  // Folder datasets: threads that decode images, the loader's own thread included (0: the machine's cores, at
  // most 8). The batches are the same for any number.
  int decode_threads = 0;
};

struct Batch {
  Tensor images;                 // float32 [B, ...] on the CPU; valid until the next next() or start_epoch()
                                 // (device_augment: the raw pixels, uint8 or float32 [B, C, H, W])
  Tensor labels;                 // int64 [B]
  Tensor warps;                  // device_augment: float32 [B, 6], one Affine per image; else undefined
  int64_t epoch = 0, index = 0;  // batch `index` of `epoch`
};

struct LoaderStats {
  double wait_seconds = 0;     // time next() spent blocked waiting for a batch (the step's data stall)
  double prepare_seconds = 0;  // time spent preparing batches (in the thread, or in next() without one)
  int64_t batches = 0;         // batches handed out
  int64_t skipped_images = 0;  // folder datasets with skip_bad: files that did not decode (each time met)
};

class DecodePool;

class BatchLoader {
 public:
  // Shares the dataset's tensors (no copy); they must not change while the loader lives.
  BatchLoader(const Dataset& ds, const LoaderOptions& options);
  ~BatchLoader();  // stops and joins the thread, also in the middle of an epoch
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Begins epoch `epoch` (any order, any number of times); an unfinished epoch is abandoned.
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch; false after the last one. Rethrows an error of the thread.
  bool next(Batch& out);
  int64_t batches_per_epoch() const;
  LoaderStats stats() const;
  const Dataset& dataset() const { return ds_; }

 private:
  struct Slot {
    Tensor images, labels, warps;
    Tensor raw;        // folder datasets decoded on the host: uint8 [B, 3, S, S] before prepare_gathered
    int64_t rows = 0;  // of this batch (fewer than batch_rows when bad files were skipped)
    int64_t batch = -1;
    uint64_t generation = 0;
    bool ready = false;
  };
  void producer();
  // Returns the number of files skipped.
  int64_t fill(Slot& slot, int64_t epoch, int64_t b, const std::vector<int64_t>& order);
  int64_t fill_files(Slot& slot, int64_t epoch, int64_t b, const std::vector<int64_t>& order);
  int64_t batch_rows(int64_t b) const;

  Dataset ds_;
  LoaderOptions opt_;
  std::vector<Slot> slots_;
  std::vector<void*> pinned_;
  std::unique_ptr<DecodePool> pool_;  // folder datasets

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, active_ = false;
  uint64_t generation_ = 0;
  int64_t epoch_ = 0, produce_next_ = 0, consume_next_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
  std::exception_ptr error_;
  LoaderStats stats_;
  std::thread thread_;
};

}  // namespace fovea::data
