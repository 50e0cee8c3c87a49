#include "parallel/mpi_check.h"

#include <string>

#include "core/error.h"

namespace t6 {

void fail_mpi_call(int error_code, const char* call, const char* file, int line) {
  char description[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(error_code, description, &length) != MPI_SUCCESS) length = 0;
  const std::string call_text = call;
  // The function name is what helps; its argument list is noise in a one-line message.
  const std::string function = call_text.substr(0, call_text.find('('));
  fail(str(function, " failed at ", file, ":", line, ": ", std::string(description, size_t(length))));
}

}  // namespace t6
