// ThreadSanitizer annotations for the kernel executor's race mode (T6_CUDA_EMU_RACES: the
// emulation and the .cu sources built with -fsanitize=thread). Each CUDA thread's fiber is a TSan
// context of its own, and switches between them establish no order: happens-before comes only from
// what orders CUDA threads on a GPU: the launch, the barriers and warp collectives (one sync object
// per generation, released by every participant before it parks and acquired after), and the grid's
// end. The emulation's own bookkeeping is hidden from TSan. The emulation is compiled without
// instrumentation and calls TSan's API only in race mode (T6_CUDA_EMU_RACES); else every call is a
// no-op.
#pragma once

#if defined(T6_CUDA_EMU_RACES)
#include <sanitizer/tsan_interface.h>
extern "C" {
void AnnotateIgnoreReadsBegin(const char* file, int line);
void AnnotateIgnoreReadsEnd(const char* file, int line);
void AnnotateIgnoreWritesBegin(const char* file, int line);
void AnnotateIgnoreWritesEnd(const char* file, int line);
}
#endif

namespace t6::cuda_emu::races {

#if defined(T6_CUDA_EMU_RACES)
inline void* current_context() { return __tsan_get_current_fiber(); }
inline void* create_context() { return __tsan_create_fiber(0); }
inline void destroy_context(void* context) { __tsan_destroy_fiber(context); }
inline void switch_to(void* context) { __tsan_switch_to_fiber(context, __tsan_switch_to_fiber_no_sync); }
inline void release(const void* token) { __tsan_release(const_cast<void*>(token)); }
inline void acquire(const void* token) { __tsan_acquire(const_cast<void*>(token)); }
// Accesses of the emulation's own state, from any fiber, are not the kernel's.
struct HiddenFromTsan {
  HiddenFromTsan() {
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  }
  ~HiddenFromTsan() {
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
  }
  HiddenFromTsan(const HiddenFromTsan&) = delete;
  HiddenFromTsan& operator=(const HiddenFromTsan&) = delete;
};
#else
inline void* current_context() { return nullptr; }
inline void* create_context() { return nullptr; }
inline void destroy_context(void*) {}
inline void switch_to(void*) {}
inline void release(const void*) {}
inline void acquire(const void*) {}
struct HiddenFromTsan {
  HiddenFromTsan() {}  // user-provided, so that a scope guard is not an "unused variable"
  ~HiddenFromTsan() {}
};
#endif

}  // namespace t6::cuda_emu::races
