#!/usr/bin/env bash
# One command for the GPU machine (no package access; Ubuntu 24.04, CUDA 13, Python 3.12 + PyTorch,
# maybe no HDF5/OpenBLAS/toml++): runs t6 from the pack that scripts/gpu_pack.sh built on the CPU
# machine (gpu_pack/t6_gpu.tar.xz, carried along), and prints one summary.
#   1. probe: GPU, driver, CUDA, PyTorch, and where cuBLASLt / NCCL / MPI libraries are;
#   2. every gpu-labelled test binary, plus test_backend_choice;
#   3. t6_pretrain with parallel.backend = "cuda" (the training step has no CUDA path yet: it must be
#      one clear error) — the 100-step t6-demo run on CUDA needs that path and is reported NOT RUN;
#   4. benchmarks: bench_cuda_kernels (bf16 GEMM rate, t6 attention) against PyTorch SDPA on the same
#      shapes (T6-small: 34 heads; llama_mha small: 12 heads), then ../shared/anchors'
#      bench_reference.py T6 16 1 and llama_mha 16 1 (the official models under torch.compile).
#   5. compute-sanitizer memcheck and racecheck on two attention shapes, when time is left.
# Logs go to $OUT (the device tool's folder) or /tmp/t6_gpu_out. Whole run: a few minutes, under 10.
#   bash scripts/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/t6_gpu_out}
mkdir -p "$out"
log="$out/gpu_check.log"
summary="$out/summary.txt"
: >"$log"
: >"$summary"
work=/tmp/t6_gpu
say() { echo "$*" | tee -a "$log"; }
note() { echo "$*" | tee -a "$summary" "$log"; }
# Runs a command with a time limit; its output goes to $last (read by the caller), the log and the
# screen (last lines); its status is returned.
last=/tmp/t6_gpu_last.log
step() {
  local seconds=$1
  shift
  say "+ $*"
  timeout "$seconds" "$@" >"$last" 2>&1
  local status=$?
  cat "$last" >>"$log"
  tail -n 25 "$last"
  return $status
}

say "== t6 gpu_check $(date -u +%FT%TZ)"
if [[ ! -f gpu_pack/t6_gpu.tar.xz ]]; then
  note "FAIL no gpu_pack/t6_gpu.tar.xz: run 'bash scripts/gpu_pack.sh' on the CPU machine and carry gpu_pack"
  exit 1
fi
rm -rf "$work" && mkdir -p "$work" && tar -xJf gpu_pack/t6_gpu.tar.xz -C "$work"
note "pack commit $(cat "$work/commit"), checkout $(git rev-parse HEAD 2>/dev/null || echo unknown)"

# ---- 1. probe ------------------------------------------------------------------------------------
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee -a "$log"
note "gpu $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
python=python3
note "python $($python -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -1)"
for tool in nvcc cmake ninja mpirun; do say "$tool: $(command -v $tool || echo absent)"; done
# The libraries the pack leaves to this machine: search the usual places and the Python wheels.
library_dirs=()
for library in libcublasLt.so.13 libnccl.so.2 libmpi.so.40; do
  found=$(ldconfig -p 2>/dev/null | awk -v l="$library" '$1 == l {print $NF; exit}')
  if [[ -z "$found" ]]; then
    found=$(find /usr/local/cuda* /usr/lib /opt /usr/local/lib -name "$library" -print -quit 2>/dev/null)
  fi
  note "library $library: ${found:-NOT FOUND}"
  [[ -n "$found" ]] && library_dirs+=("$(dirname "$found")")
done
# The pack's libraries first, then this machine's CUDA/NCCL/MPI, then the pack's Open MPI fallback.
export LD_LIBRARY_PATH="$work/lib$(printf ':%s' "${library_dirs[@]}"):$work/lib/mpi${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
for binary in "$work"/bin/*; do
  missing=$(ldd "$binary" | grep 'not found' | awk '{print $1}' | tr '\n' ' ')
  [[ -n "$missing" ]] && note "FAIL $(basename "$binary") cannot load: $missing"
done

# ---- 2. tests ------------------------------------------------------------------------------------
for test_binary in "$work"/bin/test_*; do
  name=$(basename "$test_binary")
  if step 300 "$test_binary" --gtest_color=no; then result=PASS; else result="FAIL (exit $?)"; fi
  counts=$(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ tests?[.,]' "$last" | tr '\n' ' ')
  note "test $name: $result $counts"
done

# ---- 3. training on CUDA -------------------------------------------------------------------------
mkdir -p /tmp/t6_gpu_run
if step 60 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$work/bin/t6_pretrain" \
    --config configs/t6-demo.toml --run-dir /tmp/t6_gpu_run --set parallel.backend=cuda; then
  note "FAIL t6_pretrain parallel.backend=cuda trained, but this build has no CUDA training step"
elif grep -q 'parallel.backend = "cuda"' "$last"; then
  note "pass t6_pretrain parallel.backend=cuda refused with one clear error (no CUDA training step yet)"
else
  note "FAIL t6_pretrain parallel.backend=cuda: unexpected failure (see gpu_check.log)"
fi
note "NOT RUN t6-demo 100 steps on CUDA, bench_train_step backend=cuda: the model/trainer have no CUDA path yet"

# ---- 4. benchmarks -------------------------------------------------------------------------------
for shape in "34 34" "12 12"; do
  read -r heads kv_heads <<<"$shape"
  step 180 "$work/bin/bench_cuda_kernels" --batch 16 --seq 1024 --heads $heads --kv-heads $kv_heads --head-dim 64
  note "$(grep '^RESULT bench_cuda_kernels' "$last" || echo 'FAIL bench_cuda_kernels') heads=$heads"
  step 180 $python scripts/bench_sdpa.py 16 $heads $kv_heads 64 1024
  note "$(grep '^RESULT bench_sdpa' "$last" || echo 'FAIL bench_sdpa') heads=$heads"
done
for model in T6 llama_mha; do
  step 300 env PYTHONUNBUFFERED=1 $python "$work/anchors/bench_reference.py" $model 16 1
  note "$(grep '^RESULT model=' "$last" || echo "FAIL bench_reference.py $model") (reference)"
done

# ---- 5. memory and race checks of the attention kernels, if time is left ---------------------------
if command -v compute-sanitizer >/dev/null && (( SECONDS < 420 )); then
  for tool in memcheck racecheck; do
    if step 90 compute-sanitizer --tool $tool --error-exitcode 3 "$work/bin/test_cuda_ops" \
        --gtest_filter='Shapes/CudaAttention.*/0:Shapes/CudaAttention.*/2'; then
      note "compute-sanitizer $tool on attention (2 shapes): clean"
    else
      note "FAIL compute-sanitizer $tool on attention: exit $? (see gpu_check.log)"
    fi
  done
else
  note "NOT RUN compute-sanitizer (absent, or past 7 minutes)"
fi

echo
echo "================ t6 gpu_check summary ================"
cat "$summary"
