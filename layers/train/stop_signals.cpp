#include "layers/train/stop_signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "layers/train/session.h"

namespace fovea::nn {
namespace {

std::atomic<TrainSession*> g_session{nullptr};
volatile sig_atomic_t g_signal = 0;
struct sigaction g_old_int, g_old_term;

void say(const char* text) {
  (void)!::write(STDERR_FILENO, text, std::strlen(text));
}

void on_signal(int sig) {
  TrainSession* s = g_session.load();
  const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
  if (g_signal != 0 || s == nullptr) {
    say("\nfovea: ");
    say(name);
    say(s ? " again: exiting at once; the last checkpoint written is kept\n" : ": exiting (no step was made yet)\n");
    ::_exit(128 + sig);
  }
  g_signal = sig;
  s->request_stop();
  say("\nfovea: ");
  say(name);
  say(": stopping after this step and writing a checkpoint (send it again to exit at once)\n");
}

}  // namespace

StopOnSignals::StopOnSignals() {
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a read or write in progress goes on; the training loop polls the stop flag
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopOnSignals::~StopOnSignals() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  g_session.store(nullptr);
}

void StopOnSignals::attach(TrainSession& session) {
  g_session.store(&session);
  if (g_signal != 0) session.request_stop();
}

void StopOnSignals::detach() {
  g_session.store(nullptr);
}

int StopOnSignals::signal() const {
  return g_signal;
}

}  // namespace fovea::nn
