#include "parallel/mpi_probe_channel.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "core/error.h"
#include "parallel/collective_deadline.h"
#include "parallel/mpi_check.h"
#include "parallel/peer_watch.h"

namespace t6 {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kProbeTag = 1;
// An answer's tag carries the probe's round, so an answer that arrives after its prober stopped
// waiting (the collective completed meanwhile) is never taken for the answer to a later probe.
constexpr int kAnswerTag = 1000;
constexpr int kRounds = 30000;
constexpr int kAnswerBytes = 240;
// Polls of MPI_Test between looks at the clock and at pending probes.
constexpr int64_t kPollsPerLook = 64;

struct WaitState {
  std::string operation = "no collective";  // what this rank waits in, for its answers
  std::vector<MPI_Comm> channels;            // every live ProbeChannel of this process
  int probe_round = 0;
};

WaitState& wait_state() {
  static WaitState state;
  return state;
}

// Answers every pending probe on every channel with what this rank is waiting in.
void answer_probes() {
  WaitState& state = wait_state();
  for (MPI_Comm channel : state.channels) {
    for (;;) {
      int pending = 0;
      MPI_Status status;
      T6_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kProbeTag, channel, &pending, &status));
      if (!pending) break;
      int round = 0;
      T6_MPI_CHECK(MPI_Recv(&round, 1, MPI_INT, status.MPI_SOURCE, kProbeTag, channel, MPI_STATUS_IGNORE));
      std::array<char, kAnswerBytes> answer{};
      std::snprintf(answer.data(), answer.size(), "%s (%s)", state.operation.c_str(), progress_label().c_str());
      T6_MPI_CHECK(MPI_Send(answer.data(), kAnswerBytes, MPI_CHAR, status.MPI_SOURCE, kAnswerTag + round, channel));
    }
  }
}

bool test(MPI_Request& request) {
  int done = 0;
  T6_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
  return done != 0;
}

// World rank of every member of comm, for messages.
std::vector<int> world_ranks_of(MPI_Comm comm, int size) {
  MPI_Group group, world;
  T6_MPI_CHECK(MPI_Comm_group(comm, &group));
  T6_MPI_CHECK(MPI_Comm_group(MPI_COMM_WORLD, &world));
  std::vector<int> local(static_cast<size_t>(size)), global(static_cast<size_t>(size));
  for (int i = 0; i < size; ++i) local[size_t(i)] = i;
  T6_MPI_CHECK(MPI_Group_translate_ranks(group, size, local.data(), world, global.data()));
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  return global;
}

}  // namespace

ProbeChannel::ProbeChannel(MPI_Comm comm) {
  T6_MPI_CHECK(MPI_Comm_dup(comm, &control_));
  T6_MPI_CHECK(MPI_Comm_set_errhandler(control_, MPI_ERRORS_RETURN));
  T6_MPI_CHECK(MPI_Comm_rank(control_, &rank_));
  T6_MPI_CHECK(MPI_Comm_size(control_, &size_));
  wait_state().channels.push_back(control_);
}

ProbeChannel::~ProbeChannel() {
  std::vector<MPI_Comm>& channels = wait_state().channels;
  channels.erase(std::remove(channels.begin(), channels.end(), control_), channels.end());
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&control_);
}

void ProbeChannel::wait(MPI_Request& request, const std::string& operation) {
  WaitState& state = wait_state();
  const auto start = Clock::now();
  const double timeout = collective_timeout();
  // The probe's grace comes out of the timeout, so the job ends within parallel.timeout_s.
  const double grace = std::min(2.0, 0.2 * timeout);
  const auto probe_time = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout - grace));
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
  state.operation = operation;
  for (int64_t polls = 1;; ++polls) {
    if (test(request)) return;
    if (polls % kPollsPerLook != 0) continue;
    answer_probes();
    check_peers(operation);
    if (Clock::now() >= probe_time) break;
    // Waiting long: leave the core to a rank that shares it (oversubscribed tests, hyperthreads).
    if (polls > 64 * kPollsPerLook) std::this_thread::yield();
  }

  // Probe the other members; the answers say where each is.
  const int round = ++state.probe_round % kRounds;
  std::vector<MPI_Request> probes(size_t(size_), MPI_REQUEST_NULL), answers(size_t(size_), MPI_REQUEST_NULL);
  std::vector<std::array<char, kAnswerBytes>> texts(static_cast<size_t>(size_));
  std::vector<bool> answered(size_t(size_), false);
  answered[size_t(rank_)] = true;
  for (int peer = 0; peer < size_; ++peer) {
    if (peer == rank_) continue;
    T6_MPI_CHECK(MPI_Isend(&round, 1, MPI_INT, peer, kProbeTag, control_, &probes[size_t(peer)]));
    T6_MPI_CHECK(MPI_Irecv(texts[size_t(peer)].data(), kAnswerBytes, MPI_CHAR, peer, kAnswerTag + round, control_,
                           &answers[size_t(peer)]));
  }
  while (Clock::now() < deadline) {
    if (test(request)) {
      // The late rank arrived after all; answers still due land in these (abandoned) requests.
      for (MPI_Request& pending : probes) if (pending != MPI_REQUEST_NULL) MPI_Request_free(&pending);
      for (MPI_Request& pending : answers) if (pending != MPI_REQUEST_NULL) MPI_Request_free(&pending);
      return;
    }
    answer_probes();
    check_peers(operation);
    for (int peer = 0; peer < size_; ++peer)
      if (!answered[size_t(peer)]) answered[size_t(peer)] = test(answers[size_t(peer)]);
    std::this_thread::yield();
  }

  const std::vector<int> world = world_ranks_of(control_, size_);
  std::string late, elsewhere;
  int late_count = 0;
  for (int peer = 0; peer < size_; ++peer) {
    if (!answered[size_t(peer)]) {
      late += str(late_count++ == 0 ? "" : ", ", world[size_t(peer)]);
    } else if (peer != rank_) {
      const std::string answer(texts[size_t(peer)].data());
      if (answer.rfind(operation, 0) != 0) elsewhere += str("; rank ", world[size_t(peer)], " is in ", answer);
    }
  }
  const std::string verdict =
      late.empty() ? "every rank of the group is in it or another collective, but it did not complete (a network fault?)"
                   : str(late_count == 1 ? "rank " : "ranks ", late, " did not reach it (no answer within ", grace,
                         " s: stopped, hung or dead; parallel.timeout_s sets the wait)");
  fail(str(progress_label(), ": ", operation, " waited ", timeout, " s: ", verdict, elsewhere));
}

}  // namespace t6
