// Ctrl-C and SIGTERM during training (issue 13): the first SIGINT or SIGTERM asks the session to stop after the
// step in progress (TrainSession::request_stop, an atomic store: safe in a signal handler); the session then
// ends the partial epoch with its evaluation and checkpoint, and `fovea train` says where it is and exits
// 128 + the signal (130, 143). A second SIGINT or SIGTERM exits at once (nothing half-written is left: every
// file is written to a temporary and renamed, and a dead process's temporaries are removed by the next run in
// that folder). Before a session is attached (data loading, model setup) a signal exits at once.
#pragma once

namespace fovea::nn {

class TrainSession;

class StopOnSignals {
 public:
  StopOnSignals();   // installs the handlers of SIGINT and SIGTERM
  ~StopOnSignals();  // restores the previous ones
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

  // From now on a signal stops `session` after its current step (at once if one came already).
  void attach(TrainSession& session);
  void detach();
  int signal() const;  // the first signal received (SIGINT, SIGTERM), 0 if none
  int exit_code() const { return signal() ? 128 + signal() : 0; }
};

}  // namespace fovea::nn
