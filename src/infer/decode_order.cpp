#include "infer/decode_order.h"

#include "core/error.h"

namespace t6::infer {

const char* tpa_decode_order_name(TpaDecodeOrder order) {
  return order == TpaDecodeOrder::factorised ? "factorised" : "materialised";
}

TpaDecodeOrder tpa_decode_order_from_name(const std::string& name) {
  if (name == "factorised") return TpaDecodeOrder::factorised;
  if (name == "materialised") return TpaDecodeOrder::materialised;
  fail(str("unknown TPA decode order '", name, "' (expected factorised or materialised)"));
}

}  // namespace t6::infer
