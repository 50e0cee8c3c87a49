// Warp votes (__ballot_sync, __any_sync, __all_sync) and the fault of a shuffle that reads a lane
// outside its mask: the out-of-line parts of cuda_emu_kernel.h's warp intrinsics.
#include <string>

#include "cuda_emu_kernel.h"
#include "device_work.h"

namespace t6::cuda_emu {

void throw_shuffle_source_outside_mask(int lane, int source) {
  throw DeviceFault("a warp shuffle: lane " + std::to_string(lane) + " reads lane " + std::to_string(source) +
                    ", which is not in the shuffle's mask");
}

unsigned vote(const char* operation, unsigned mask, bool predicate) {
  struct Lane {
    bool predicate;
    unsigned ballot;
  } lane{predicate, 0};
  warp_collective({operation, mask, {0, 0, 0}, &lane, [](void* const lanes[32]) {
                     unsigned ballot = 0;
                     for (int l = 0; l < 32; ++l)
                       if (lanes[l] && static_cast<Lane*>(lanes[l])->predicate) ballot |= 1u << l;
                     for (int l = 0; l < 32; ++l)
                       if (lanes[l]) static_cast<Lane*>(lanes[l])->ballot = ballot;
                   }});
  return lane.ballot;
}

}  // namespace t6::cuda_emu
