#!/usr/bin/env bash
# Builds here (the CPU machine, which has the CUDA toolkit) what scripts/gpu_check.sh runs on the
# GPU machine, and packs it into gpu_pack/t6_gpu.tar.xz (git-ignored; a device run carries
# "gpu_pack"): the stripped binaries and every shared library they load except glibc's own and the
# big CUDA libraries the GPU machine has (cuBLASLt, NCCL, the driver), plus the reference models
# of ../shared/anchors for the side-by-side benchmark. Debian's OpenBLAS alone is 36.5 MB, so the
# pack is xz-compressed; it must stay under 64 MiB (the limit of what travels to the GPU machine).
#   bash scripts/gpu_pack.sh [build dir, default build]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
anchors=${T6_ANCHORS:-../shared/anchors}
pack=gpu_pack
limit_bytes=$((60 * 1024 * 1024))  # 64 MiB less room for the source tree that travels with it

# Every test whose header says it is a gpu test and that the native build has (not the emulation's
# own), with its MPI ranks for gpu_check.sh (tests.txt), plus what gpu_check.sh runs besides.
gpu_test_list=$(for source in tests/test_*.cpp tests/test_*.cu; do
  grep -q '^// ctest-labels:.*gpu' "$source" || continue
  grep -q '^// ctest-requires:' "$source" && continue
  ranks=$(sed -n 's|^// ctest-mpi-ranks:[ ]*||p' "$source")
  echo "$(basename "${source%.*}") ${ranks:-1}"
done; echo "test_backend_choice 1")
gpu_tests=$(echo "$gpu_test_list" | awk '{print $1}')
targets="$gpu_tests bench_cuda_kernels bench_decode t6_pretrain t6_preprocess"
grep -q '^T6_CUDA:BOOL=ON' "$build/CMakeCache.txt" || {
  echo "gpu_pack: $build is not a CUDA build (configure with -DT6_CUDA=ON)" >&2
  exit 1
}
nice cmake --build "$build" -j2 --target $targets

rm -rf "$pack/stage" "$pack/t6_gpu.tar.xz"
mkdir -p "$pack/stage/bin" "$pack/stage/lib/mpi" "$pack/stage/anchors"
echo "$gpu_test_list" >"$pack/stage/tests.txt"
for target in $targets; do
  cp "$build/bin/$target" "$pack/stage/bin/"
  strip --strip-unneeded "$pack/stage/bin/$target"
done

# Shared libraries: everything ldd resolves, except glibc (it must be the GPU machine's own) and
# the CUDA libraries found there (gpu_check.sh looks for them); libcudart is small and carried so
# the runtime matches the one the kernels were built with. gpu_check.sh uses a carried library only
# where the GPU machine lacks it: Ubuntu's libstdc++ and libgomp are newer than these, and its
# Open MPI knows where its own plugins are.
mpi_libraries='^(libmpi|libopen-pal|libopen-rte|libhwloc|libevent|libpmix|libfabric|libucp|libucs|libuct|libpsm|libibverbs|librdmacm|libnl)'
not_carried='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libcuda\.so|libcublas|libcublasLt|libnccl)'
for binary in "$pack"/stage/bin/*; do
  ldd "$binary" | awk '$3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ "$name" =~ $not_carried ]]; then continue; fi
  if [[ "$name" =~ $mpi_libraries ]]; then destination=lib/mpi; else destination=lib; fi
  cp -L "$path" "$pack/stage/$destination/$name"
done
# Open MPI and PMIx load their components by path at MPI_Init; carried libraries would look for them
# under Debian's directories, so the components travel too (used only with the carried Open MPI).
cp -rL "$(ompi_info --path pkglibdir --parsable | cut -d: -f3)" "$pack/stage/lib/openmpi-plugins"
pmix_plugins=/usr/lib/x86_64-linux-gnu/pmix2/lib/pmix  # Debian's libpmix2
if [[ -d "$pmix_plugins" ]]; then cp -rL "$pmix_plugins" "$pack/stage/lib/pmix-plugins"; fi
strip --strip-unneeded "$pack"/stage/lib/*.so* "$pack"/stage/lib/mpi/*.so* "$pack"/stage/lib/*-plugins/*.so 2>/dev/null || true

for file in bench_reference.py T6.py llama_mha.py LICENSE.tensorgi-T6; do
  cp "$anchors/$file" "$pack/stage/anchors/"
done
git rev-parse HEAD > "$pack/stage/commit"

tar -cJf "$pack/t6_gpu.tar.xz" -C "$pack/stage" .
size=$(stat -c %s "$pack/t6_gpu.tar.xz")
echo "gpu_pack: $pack/t6_gpu.tar.xz $((size / 1024)) KiB ($(du -sh "$pack/stage" | cut -f1) unpacked), commit $(cat "$pack/stage/commit")"
ls "$pack/stage/bin" "$pack/stage/lib" "$pack/stage/lib/mpi" | tr '\n' ' '; echo
if (( size > limit_bytes )); then
  echo "gpu_pack: the pack is larger than $((limit_bytes / 1024 / 1024)) MiB" >&2
  exit 1
fi
rm -rf "$pack/stage"
