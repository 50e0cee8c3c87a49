# PyTorch's scaled_dot_product_attention (causal, bf16) on the shapes of bench_cuda_kernels, so that
# t6's attention kernel is compared with what the reference model uses, on the same GPU in the same
# script (scripts/gpu_check.sh). Times are medians of CUDA-event timings after warm-up.
#   python3 scripts/bench_sdpa.py [batch heads kv_heads head_dim seq]
# Last line: RESULT bench_sdpa attention_forward_ms=... attention_backward_ms=... backend=...
import sys

import torch
import torch.nn.functional as F

B, H, HKV, D, T = (int(a) for a in (sys.argv[1:6] if len(sys.argv) > 5 else (16, 34, 34, 64, 1024)))
torch.manual_seed(0)
q = torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
k = torch.randn(B, HKV, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
v = torch.randn(B, HKV, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
dy = torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16)
gqa = dict(enable_gqa=True) if HKV != H else {}


def median_ms(fn, repeats=20):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


forward = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, **gqa))
y = F.scaled_dot_product_attention(q, k, v, is_causal=True, **gqa)
backward = median_ms(lambda: torch.autograd.grad(y, (q, k, v), dy, retain_graph=True))
flop = 2 * 2 * B * H * T * T * D / 2
print(f"SDPA B {B} T {T} H {H} Hkv {HKV} D {D}: forward {forward:.3f} ms ({flop / forward / 1e9:.1f} TFLOP/s), "
      f"backward {backward:.3f} ms ({2.5 * flop / backward / 1e9:.1f} TFLOP/s)")
print(f"RESULT bench_sdpa attention_forward_ms={forward:.3f} attention_backward_ms={backward:.3f} "
      f"attention_forward_tflops={flop / forward / 1e9:.1f} attention_backward_tflops={2.5 * flop / backward / 1e9:.1f}")
