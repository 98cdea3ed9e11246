#include "core/counters.h"

#include <atomic>

namespace fovea {
namespace {
std::atomic<int64_t> g_host_syncs{0}, g_launches{0};
}  // namespace

int64_t host_sync_count() {
  return g_host_syncs.load(std::memory_order_relaxed);
}

int64_t kernel_launch_count() {
  return g_launches.load(std::memory_order_relaxed);
}

void detail::count_host_sync() {
  g_host_syncs.fetch_add(1, std::memory_order_relaxed);
}

void detail::count_launch() {
  g_launches.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace fovea
