// The kernel executor: one fiber per CUDA thread, blocks one after another, barriers and warp
// collectives that release when every participant has arrived (see cuda_emu_executor.h).
#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>

#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_emu_executor.h"
#include "cuda_emu_schedule.h"
#include "device_work.h"
#include "race_annotations.h"

namespace ctx = boost::context;

namespace t6::cuda_emu {

namespace {

constexpr int kWarpSize = 32;
// Kernel frames are small, but a fiber also unwinds through C++ exception machinery when a
// deadlocked block is torn down; pages are only committed when touched.
constexpr size_t kFiberStackBytes = 256 << 10;

enum class Waiting { Runnable, Barrier, Collective, Exited };

// The thread's TSan context (race mode), outliving its fiber's unwinding.
struct RaceContext {
  void* context = races::create_context();
  RaceContext() = default;
  RaceContext(const RaceContext&) = delete;
  RaceContext& operator=(const RaceContext&) = delete;
  ~RaceContext() { races::destroy_context(context); }
};

struct EmulatedThread {
  RaceContext race;
  ThreadBuiltins builtins{};
  int linear = 0;
  Waiting waiting = Waiting::Runnable;
  const WarpCollective* collective = nullptr;
  const void* sync_token = nullptr;  // race mode: the barrier or collective generation it waits at
  ctx::fiber own;        // the thread while it is parked
  ctx::fiber scheduler;  // the block runner while the thread runs
  void* scheduler_race_context = nullptr;
  std::exception_ptr error;
};

// Race mode: unique addresses to release and acquire, one per barrier or collective generation.
class SyncTokens {
 public:
  const void* at(size_t generation) {
    while (tokens_.size() <= generation) tokens_.emplace_back(0);
    return &tokens_[generation];
  }

 private:
  std::deque<char> tokens_;
};

thread_local EmulatedThread* running_thread = nullptr;

std::mt19937_64& schedule_random() {
  thread_local std::mt19937_64 random(schedule_seed());
  return random;
}

std::string index_text(const uint3& index) {
  std::ostringstream text;  // (GCC 12 warns falsely on "(" + std::to_string(...) chains)
  text << "(" << index.x << "," << index.y << "," << index.z << ")";
  return text.str();
}

// Runs the threads of one block to completion.
class BlockRun {
 public:
  BlockRun(const LaunchShape& shape, const std::function<void()>& thread_body, char* dynamic_shared,
           const char* launch_token, const char* finished_token)
      : shape_(shape), thread_body_(thread_body), dynamic_shared_(dynamic_shared), launch_token_(launch_token),
        finished_token_(finished_token) {}

  void run(uint3 block_index) {
    const races::HiddenFromTsan hidden;  // the host context runs only the emulation's bookkeeping
    block_index_ = block_index;
    const dim3 block = shape_.block;
    const int count = int(block.x * block.y * block.z);
    threads_ = std::vector<EmulatedThread>(size_t(count));
    barrier_tokens_ = std::make_unique<SyncTokens>();
    warp_tokens_ = std::vector<SyncTokens>(size_t((count + kWarpSize - 1) / kWarpSize));
    barrier_generation_ = 0;
    warp_generations_.assign(warp_tokens_.size(), 0);
    // Poisoned at every block start: a kernel that reads shared memory it never wrote sees NaN
    // (0xFF bytes are NaN in fp32 and bf16), not the previous block's values or zeros.
    std::memset(dynamic_shared_, 0xFF, shape_.dynamic_shared_bytes);
    for (int linear = 0; linear < count; ++linear) {
      EmulatedThread& thread = threads_[size_t(linear)];
      thread.linear = linear;
      thread.builtins = {uint3{unsigned(linear) % block.x, unsigned(linear) / block.x % block.y,
                               unsigned(linear) / (block.x * block.y)},
                         block_index, shape_.block, shape_.grid, dynamic_shared_};
      thread.scheduler_race_context = races::current_context();
      thread.own = ctx::fiber(std::allocator_arg, stacks(), [&thread, this](ctx::fiber&& scheduler) {
        thread.scheduler = std::move(scheduler);
        races::acquire(launch_token_);
        try {
          thread_body_();
        } catch (const ctx::detail::forced_unwind&) {
          throw;  // a deadlocked block being torn down
        } catch (...) {
          thread.error = std::current_exception();
        }
        // The last accesses to the thread's record come before the release, so that the host,
        // which acquires after the block, may free it.
        ctx::fiber scheduler_fiber;
        void* scheduler_context = nullptr;
        {
          const races::HiddenFromTsan hidden;
          thread.waiting = Waiting::Exited;
          scheduler_fiber = std::move(thread.scheduler);
          scheduler_context = thread.scheduler_race_context;
        }
        races::release(finished_token_);
        races::switch_to(scheduler_context);
        return scheduler_fiber;
      });
    }
    for (;;) {
      run_runnable_threads();
      if (all_exited()) return;
      if (release_collectives() || release_barrier()) continue;
      fault("deadlock: " + describe_threads());
    }
  }

 private:
  static ctx::pooled_fixedsize_stack& stacks() {
    thread_local ctx::pooled_fixedsize_stack pool(kFiberStackBytes);
    return pool;
  }

  void run_runnable_threads() {
    order_indices(order_, int(threads_.size()), schedule_random());
    for (int linear : order_) {
      EmulatedThread& thread = threads_[size_t(linear)];
      if (thread.waiting != Waiting::Runnable) continue;
      running_thread = &thread;
      races::switch_to(thread.race.context);
      thread.own = std::move(thread.own).resume();
      running_thread = nullptr;
      if (thread.error) rethrow_from(thread);
    }
  }

  bool all_exited() const {
    for (const EmulatedThread& thread : threads_)
      if (thread.waiting != Waiting::Exited) return false;
    return true;
  }

  // Releases every warp collective whose participants have all arrived; true if any was released.
  bool release_collectives() {
    bool released = false;
    const int count = int(threads_.size());
    for (EmulatedThread& first : threads_) {
      if (first.waiting != Waiting::Collective) continue;
      const WarpCollective& collective = *first.collective;
      const int warp_base = first.linear / kWarpSize * kWarpSize, lane = first.linear % kWarpSize;
      if (!(collective.mask >> lane & 1u))
        fault(str_thread(first) + " called " + collective.operation + " with a mask that leaves out its own lane");
      void* payloads[kWarpSize] = {};
      bool all_arrived = true;
      for (int other = 0; other < kWarpSize; ++other) {
        if (!(collective.mask >> other & 1u)) continue;
        if (warp_base + other >= count)
          fault(str_thread(first) + " called " + collective.operation + " with mask " + hex(collective.mask) +
                ", which names lane " + std::to_string(other) + " of a warp that has only " +
                std::to_string(count - warp_base) + " threads");
        const EmulatedThread& peer = threads_[size_t(warp_base + other)];
        if (peer.waiting != Waiting::Collective) {
          all_arrived = false;
          break;
        }
        if (!same_collective(collective, *peer.collective))
          fault("lanes of one warp disagree at a warp collective: " + str_thread(first) + " is at " +
                describe(first) + ", " + str_thread(peer) + " at " + describe(peer));
        payloads[other] = peer.collective->payload;
      }
      if (!all_arrived) continue;
      if (collective.combine) collective.combine(payloads);
      for (int other = 0; other < kWarpSize; ++other)
        if (collective.mask >> other & 1u) threads_[size_t(warp_base + other)].waiting = Waiting::Runnable;
      ++warp_generations_[size_t(warp_base / kWarpSize)];
      released = true;
    }
    return released;
  }

  // __syncthreads releases when every thread of the block waits at it.
  bool release_barrier() {
    for (const EmulatedThread& thread : threads_)
      if (thread.waiting != Waiting::Barrier) return false;
    for (EmulatedThread& thread : threads_) thread.waiting = Waiting::Runnable;
    ++barrier_generation_;
    return true;
  }

  static bool same_collective(const WarpCollective& a, const WarpCollective& b) {
    return std::strcmp(a.operation, b.operation) == 0 && a.mask == b.mask &&
           std::memcmp(a.agreement, b.agreement, sizeof a.agreement) == 0;
  }

  static std::string hex(unsigned value) {
    std::ostringstream text;
    text << "0x" << std::hex << value;
    return text.str();
  }

  std::string str_thread(const EmulatedThread& thread) const {
    return "thread " + index_text(thread.builtins.thread_index);
  }

  static std::string describe(const EmulatedThread& thread) {
    switch (thread.waiting) {
      case Waiting::Runnable: return "running";
      case Waiting::Barrier: return "wait at __syncthreads";
      case Waiting::Exited: return "returned";
      case Waiting::Collective: break;
    }
    return std::string("wait at ") + thread.collective->operation + " (mask " + hex(thread.collective->mask) + ")";
  }

  // "threads 0-31 wait at __syncthreads; threads 32-63 returned": runs of linear thread indices
  // in the same state.
  std::string describe_threads() const {
    std::string text;
    size_t begin = 0;
    while (begin < threads_.size()) {
      const std::string state = describe(threads_[begin]);
      size_t end = begin + 1;
      while (end < threads_.size() && describe(threads_[end]) == state) ++end;
      if (!text.empty()) text += "; ";
      text += end - begin == 1 ? "thread " + std::to_string(begin)
                               : "threads " + std::to_string(begin) + "-" + std::to_string(end - 1);
      text += " " + state;
      begin = end;
    }
    return text;
  }

  [[noreturn]] void fault(const std::string& what) const {
    throw DeviceFault(std::string("kernel ") + shape_.kernel_name + ", block " + index_text(block_index_) + ": " +
                      what);
  }

  [[noreturn]] void rethrow_from(const EmulatedThread& thread) const {
    try {
      std::rethrow_exception(thread.error);
    } catch (const std::exception& error) {
      fault(str_thread(thread) + ": " + error.what());
    } catch (...) {
      fault(str_thread(thread) + ": an exception that is not a std::exception");
    }
  }

  const LaunchShape& shape_;
  const std::function<void()>& thread_body_;
  char* dynamic_shared_;
  const char* launch_token_;
  const char* finished_token_;
  uint3 block_index_{};
  std::vector<EmulatedThread> threads_;
  std::vector<int> order_;
  // Race mode. Fresh per block, so that no order carries over between blocks, which the GPU runs
  // concurrently.
  std::unique_ptr<SyncTokens> barrier_tokens_;
  std::vector<SyncTokens> warp_tokens_;
  size_t barrier_generation_ = 0;
  std::vector<size_t> warp_generations_;

 public:
  const void* barrier_token() { return barrier_tokens_->at(barrier_generation_); }
  const void* warp_token(int linear) {
    const size_t warp = size_t(linear / kWarpSize);
    return warp_tokens_[warp].at(warp_generations_[warp]);
  }
};

thread_local BlockRun* running_block = nullptr;

EmulatedThread& current_thread() { return *running_thread; }

// Parks the running thread until the block runner releases what it waits at. In race mode a
// barrier or __syncwarp releases the generation's sync object before and acquires it after: every
// participant's earlier accesses then happen before every participant's later ones; nothing else
// (a shuffle, a vote, WMMA) orders memory.
void park(Waiting waiting, const WarpCollective* collective) {
  EmulatedThread& thread = current_thread();
  const void* token = nullptr;
  {
    const races::HiddenFromTsan hidden;
    if (waiting == Waiting::Barrier) token = running_block->barrier_token();
    else if (collective->orders_memory) token = running_block->warp_token(thread.linear);
    thread.collective = collective;
    thread.waiting = waiting;
  }
  if (token) races::release(token);
  races::switch_to(thread.scheduler_race_context);
  thread.scheduler = std::move(thread.scheduler).resume();
  if (token) races::acquire(token);
}

// True when the GPU would take the launch; else the launch error is set.
bool check_launch(const LaunchShape& shape, const void* kernel) {
  const DeviceLimits& limits = device_limits();
  const dim3 block = shape.block, grid = shape.grid;
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  std::string problem;
  if (threads == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0)
    problem = "an empty grid or block";
  else if (threads > uint64_t(limits.max_threads_per_block) || block.x > limits.max_block_x ||
           block.y > limits.max_block_y || block.z > limits.max_block_z)
    problem = std::to_string(threads) + " threads per block (" + std::to_string(block.x) + "x" +
              std::to_string(block.y) + "x" + std::to_string(block.z) + "); the device takes at most " +
              std::to_string(limits.max_threads_per_block);
  else if (grid.x > limits.max_grid_x || grid.y > limits.max_grid_y || grid.z > limits.max_grid_z)
    problem = "grid " + std::to_string(grid.x) + "x" + std::to_string(grid.y) + "x" + std::to_string(grid.z) +
              " is beyond the device's limits (" + std::to_string(limits.max_grid_x) + "x" +
              std::to_string(limits.max_grid_y) + "x" + std::to_string(limits.max_grid_z) + ")";
  else if (shape.dynamic_shared_bytes > max_dynamic_shared_bytes(kernel))
    problem = std::to_string(shape.dynamic_shared_bytes) + " bytes of dynamic shared memory, above the " +
              std::to_string(max_dynamic_shared_bytes(kernel)) +
              " the kernel may use (more than 48 KiB needs cudaFuncSetAttribute("
              "cudaFuncAttributeMaxDynamicSharedMemorySize))";
  if (problem.empty()) return true;
  set_launch_error(cudaErrorInvalidConfiguration,
                   std::string("launch of kernel ") + shape.kernel_name + " refused: " + problem);
  return false;
}

void run_grid(const LaunchShape& shape, const std::function<void()>& thread_body) {
  // 128-byte aligned, as the GPU aligns dynamic shared memory at least that well.
  std::unique_ptr<char[], void (*)(char*)> shared(
      static_cast<char*>(::operator new[](shape.dynamic_shared_bytes + 1, std::align_val_t(128))),
      [](char* memory) { ::operator delete[](memory, std::align_val_t(128)); });
  const dim3 grid = shape.grid;
  const int64_t blocks = int64_t(grid.x) * grid.y * grid.z;
  std::vector<int> order;
  order_indices(order, int(blocks), schedule_random());
  // Race mode: the host's work before the launch happens before every CUDA thread, and every CUDA
  // thread before the host's work after its block (which frees the block's records) and the grid.
  const auto launch_token = std::make_unique<char>(0), finished_token = std::make_unique<char>(0);
  races::release(launch_token.get());
  BlockRun block_run(shape, thread_body, shared.get(), launch_token.get(), finished_token.get());
  running_block = &block_run;
  for (int linear : order) {
    const unsigned index = unsigned(linear);
    block_run.run(uint3{index % grid.x, index / grid.x % grid.y, index / (grid.x * grid.y)});
    races::acquire(finished_token.get());  // (the next block's threads acquire only the launch)
  }
  running_block = nullptr;
}

}  // namespace

void launch_grid(const LaunchShape& shape, const void* kernel, cudaStream_t stream, std::function<void()> thread_body) {
  if (!check_launch(shape, kernel)) return;
  enqueue(stream, shape.kernel_name, [shape, body = std::move(thread_body)] { run_grid(shape, body); });
}

const ThreadBuiltins& builtins() { return current_thread().builtins; }

int lane_id() { return current_thread().linear % kWarpSize; }

void sync_threads() { park(Waiting::Barrier, nullptr); }

void warp_collective(const WarpCollective& collective) { park(Waiting::Collective, &collective); }

}  // namespace t6::cuda_emu
