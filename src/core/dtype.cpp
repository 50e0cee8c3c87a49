#include "core/dtype.h"

#include "core/error.h"

namespace t6 {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: case DType::I32: case DType::U32: return 4;
    case DType::F64: case DType::I64: case DType::U64: return 8;
    case DType::BF16: case DType::U16: return 2;
  }
  T6_ASSERT(false);
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U16: return "U16";
    case DType::U32: return "U32";
    case DType::U64: return "U64";
  }
  T6_ASSERT(false);
}

DType dtype_from_name(const std::string& name) {
  for (DType dtype : {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64, DType::U16,
                      DType::U32, DType::U64}) {
    if (name == dtype_name(dtype)) return dtype;
  }
  fail(str("unsupported dtype '", name, "'"));
}

}  // namespace t6
