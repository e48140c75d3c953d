#!/usr/bin/env bash
# Builds the non-GEMM kernel workbench: kernels/cpu/workbench/ops_bench
#   kernels/cpu/workbench/build_ops.sh && kernels/cpu/workbench/ops_bench [--bench [--all-isas]]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cpu="$here/.."
srcs=()
for fam in batchnorm elementwise loss sgd; do
  srcs+=("$cpu/$fam.cc" "$cpu/${fam}_scalar.cc" "$cpu/${fam}_avx2.cc" "$cpu/${fam}_avx512.cc")
done
srcs+=("$cpu/shortcut.cc" "$cpu/pool.cc" "$cpu/columns.cc" "$cpu/hflip.cc")
# same flags as binding.gyp
exec ${CXX:-g++} -O3 -std=c++17 -pthread -fno-math-errno -fno-trapping-math -Wall -Wno-unused-function -Wno-sign-compare \
  -I"$cpu/../include" -I"$cpu" "$here/ops_bench.cc" "${srcs[@]}" -o "$here/ops_bench"
