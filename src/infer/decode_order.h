// The TPA decode orders of ops::tpa_decode_attention (kernels/ops.h) by name, for the tools' and
// benchmarks' options.
#pragma once
#include <string>

#include "kernels/ops.h"

namespace t6::infer {

using ops::TpaDecodeOrder;
const char* tpa_decode_order_name(TpaDecodeOrder order);
TpaDecodeOrder tpa_decode_order_from_name(const std::string& name);  // throws naming the accepted values

}  // namespace t6::infer
