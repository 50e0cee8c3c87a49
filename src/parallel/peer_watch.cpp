#include "parallel/peer_watch.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#include "core/mpi_c.h"
#include "parallel/collective_deadline.h"
#include "parallel/mpi_check.h"
#include "parallel/rank_failure.h"

namespace t6 {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kNoticeTag = 7;
constexpr int kNoticeBytes = 2048;  // a longer message is cut (error lines are shorter)
constexpr auto kProcessLookInterval = std::chrono::milliseconds(100);
// A notice is a small eager message, handed over at once; this bounds the wait for a peer that
// cannot take it (its process is gone).
constexpr auto kNoticeSendWait = std::chrono::milliseconds(500);

// A process as /proc shows it: its pid and its start time (clock ticks after boot), which a new
// process that reuses the pid does not share.
struct NodePeer {
  int world_rank = 0;
  int64_t pid = 0;
  int64_t start_ticks = 0;
};

struct PeerWatch {
  MPI_Comm notices = MPI_COMM_NULL;
  int world_rank = 0, world_size = 1;
  std::vector<NodePeer> node_peers;  // the other ranks of this node
  Clock::time_point next_process_look{};
  std::array<char, kNoticeBytes> outgoing{};
};

PeerWatch& watch() {
  static PeerWatch state;
  return state;
}

// Start time of process `pid` (field 22 of /proc/PID/stat), or -1 when it does not exist or is a
// zombie (exited, not yet reaped by its launcher).
int64_t live_start_ticks(int64_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // The command name, in parentheses, may hold spaces: the fields after it start with the state.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  fields >> field;
  if (field == "Z" || field == "X" || field == "x") return -1;
  for (int index = 4; index <= 22 && fields >> field; ++index)
    if (index == 22) return std::stoll(field);
  return -1;
}

}  // namespace

void start_peer_watch() {
  PeerWatch& state = watch();
  T6_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &state.world_rank));
  T6_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &state.world_size));
  if (state.world_size == 1) return;
  T6_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &state.notices));
  T6_MPI_CHECK(MPI_Comm_set_errhandler(state.notices, MPI_ERRORS_RETURN));
  MPI_Comm node = MPI_COMM_NULL;
  T6_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, state.world_rank, MPI_INFO_NULL, &node));
  int node_size = 1;
  T6_MPI_CHECK(MPI_Comm_size(node, &node_size));
  const int64_t mine[3] = {state.world_rank, int64_t(::getpid()), live_start_ticks(::getpid())};
  std::vector<int64_t> all(size_t(node_size) * 3);
  T6_MPI_CHECK(MPI_Allgather(mine, 3, MPI_INT64_T, all.data(), 3, MPI_INT64_T, node));
  T6_MPI_CHECK(MPI_Comm_free(&node));
  state.node_peers.clear();
  for (int i = 0; i < node_size; ++i) {
    const NodePeer peer{int(all[size_t(i) * 3]), all[size_t(i) * 3 + 1], all[size_t(i) * 3 + 2]};
    // Every rank lives now: one this rank cannot see as recorded runs in another PID namespace (a
    // container of its own), where its pid means nothing here, so it is left to the others.
    if (peer.world_rank != state.world_rank && peer.start_ticks >= 0 && live_start_ticks(peer.pid) == peer.start_ticks)
      state.node_peers.push_back(peer);
  }
}

void end_peer_watch() {
  PeerWatch& state = watch();
  if (state.notices != MPI_COMM_NULL) MPI_Comm_free(&state.notices);
  state.notices = MPI_COMM_NULL;
  state.node_peers.clear();
}

void send_failure_notice(const std::string& message) {
  PeerWatch& state = watch();
  if (state.notices == MPI_COMM_NULL) return;
  const size_t length = std::min(message.size(), state.outgoing.size() - 1);
  std::copy_n(message.begin(), length, state.outgoing.begin());
  state.outgoing[length] = '\0';
  std::vector<MPI_Request> sends;
  for (int peer = 0; peer < state.world_size; ++peer) {
    if (peer == state.world_rank) continue;
    MPI_Request request = MPI_REQUEST_NULL;
    if (MPI_Isend(state.outgoing.data(), int(length + 1), MPI_CHAR, peer, kNoticeTag, state.notices, &request) ==
        MPI_SUCCESS)
      sends.push_back(request);
  }
  const auto give_up = Clock::now() + kNoticeSendWait;
  int done = 0;
  while (!done && Clock::now() < give_up)
    if (MPI_Testall(int(sends.size()), sends.data(), &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) break;
  if (!done)
    for (MPI_Request& request : sends)
      if (request != MPI_REQUEST_NULL) MPI_Request_free(&request);
}

void check_peers(const std::string& operation) {
  PeerWatch& state = watch();
  if (state.notices == MPI_COMM_NULL) return;
  int arrived = 0;
  MPI_Status status;
  T6_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kNoticeTag, state.notices, &arrived, &status));
  if (arrived) {
    int bytes = 0;
    T6_MPI_CHECK(MPI_Get_count(&status, MPI_CHAR, &bytes));
    std::vector<char> text(size_t(std::max(bytes, 1)), '\0');
    T6_MPI_CHECK(MPI_Recv(text.data(), bytes, MPI_CHAR, status.MPI_SOURCE, kNoticeTag, state.notices, MPI_STATUS_IGNORE));
    text.back() = '\0';
    throw RankError(status.MPI_SOURCE, state.world_size, text.data());
  }
  const Clock::time_point now = Clock::now();
  if (now < state.next_process_look) return;
  state.next_process_look = now + kProcessLookInterval;
  for (const NodePeer& peer : state.node_peers)
    if (live_start_ticks(peer.pid) != peer.start_ticks)
      fail(str(progress_label(), ": ", operation, ": rank ", peer.world_rank, " is gone: its process (pid ", peer.pid,
               " on this node) has exited, killed, crashed or out of memory; the job ends"));
}

}  // namespace t6
