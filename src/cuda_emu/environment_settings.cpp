// refuse_environment_setting (device_work.h): how the emulation stops on a malformed T6_EMU_*.
#include <cstdio>
#include <cstdlib>

#include "device_work.h"

namespace t6::cuda_emu {

void refuse_environment_setting(const char* name, const char* value, const char* expected) {
  std::fprintf(stderr, "t6 emulated GPU: %s='%s' is not %s\n", name, value, expected);
  std::fflush(nullptr);
  std::_Exit(2);
}

}  // namespace t6::cuda_emu
