#!/bin/sh
# Builds the conv/gemm/linear workbench: ./build.sh && ./wb (validate) ; ./wb --bench
# EXTRA="..." ./build.sh adds compiler flags (e.g. EXTRA="-fsanitize=address,undefined -g -O1").
set -e
cd "$(dirname "$0")"
CPU=..
g++ -O3 $EXTRA -std=c++17 -pthread -Wall -Wno-unused-function -Wno-sign-compare \
  -fno-math-errno -fno-trapping-math \
  -I../../include -I.. -o wb main.cc \
  $CPU/gemm.cc $CPU/gemm_scalar.cc $CPU/gemm_avx2.cc $CPU/gemm_avx512.cc \
  $CPU/conv2d.cc $CPU/conv2d_scalar.cc $CPU/conv2d_avx2.cc $CPU/conv2d_avx512.cc \
  $CPU/linear.cc
echo "built $(pwd)/wb"
