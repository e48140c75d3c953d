#!/usr/bin/env bash
# Builds the fused masked-convolution workbench: kernels/cpu/workbench/masked_conv_wb
#   kernels/cpu/workbench/build_masked.sh && kernels/cpu/workbench/masked_conv_wb [--bench K]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cpu="$here/.."
# same flags as binding.gyp
exec ${CXX:-g++} -O3 -std=c++17 -pthread -fno-math-errno -fno-trapping-math -Wall -Wno-unused-function -Wno-sign-compare \
  -I"$cpu/../include" -I"$cpu" "$here/masked_conv_wb.cc" "$cpu/masked_conv.cc" "$cpu/masked_conv_scalar.cc" \
  "$cpu/masked_conv_avx2.cc" "$cpu/masked_conv_avx512.cc" -o "$here/masked_conv_wb"
