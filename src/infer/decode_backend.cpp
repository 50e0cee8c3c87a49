#include "infer/decode_backend.h"

#include "core/error.h"
#include "kernels/device.h"

namespace t6::infer {

namespace {

// Why this model and order cannot decode on a GPU, or "" when they can.
std::string cuda_refusal(const ModelConfig& config, TpaDecodeOrder order) {
  if (config.latent_attention()) return "MLA decodes on the CPU only (its absorbed query and value maps run on the host)";
  if (config.factorised_kv() && order == TpaDecodeOrder::materialised)
    return "the CUDA backend decodes TPA in the factorised order only (drop --decode-order materialised)";
  return "";
}

}  // namespace

DecodeBackend choose_decode_backend(const std::string& backend, const ModelConfig& config, TpaDecodeOrder order) {
  T6_CHECK(backend == "cpu" || backend == "cuda" || backend == "auto", "--backend ", backend,
           ": expected cpu, cuda or auto");
  const std::string refusal = cuda_refusal(config, order);
  if (backend == "cuda") {
    // The reason that holds on every machine first: no GPU would help this model or order.
    T6_CHECK(refusal.empty(), "--backend cuda: ", refusal, "; use --backend cpu");
    T6_CHECK(build_has_cuda(), "--backend cuda: this t6 was built without CUDA; use --backend cpu");
    T6_CHECK(cuda_device_count() > 0, "--backend cuda: this process sees no GPU; use --backend cpu");
  }
  if (backend == "cpu" || !refusal.empty() || !build_has_cuda() || cuda_device_count() == 0) return {Device::CPU, "CPU"};
  cuda_select_device(0);
  return {Device::CUDA, str("CUDA on GPU 0 (", cuda_device_info(0).name, ")")};
}

}  // namespace t6::infer
