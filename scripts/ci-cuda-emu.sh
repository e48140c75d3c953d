#!/usr/bin/env bash
# CI stage: the CUDA kernels on the emulated device (no GPU, no nvcc, no driver).
#   1. installs the host toolchain cmake-js needs when missing (apt: cmake, g++, make),
#   2. npm run build:cuda-emu   (kernels/cuda/*.cu compiled by g++ -> build-cuda-emu/Release/m2kd.node),
#   3. M2KD_ADDON=cuda-emu npm run test:cuda   (parity vs the CPU kernels, gradient checks, the
#      fused masked convolution, the teacher bank, the emulator's five checks on broken kernels,
#      incremental training of every method on the device against the CPU (il-train-*.cuda.ts),
#      and kernel coverage: every compiled kernel instance must have run).
# Run from the repository root after `npm ci` and the CPU build (tsc output in dist/ is rebuilt
# by test:cuda). Ends with the line "N passed, N failed"; exits non-zero on any failure.
# About 8-9 minutes on 2 cores (build ~2.5 min, suite ~6 min: 5 of them the incremental-training
# suites il-train-{1,2,3}.cuda.ts; measured on a loaded machine).
set -u
cd "$(dirname "$0")/.."

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
  echo "== ci-cuda-emu: apt-get install ${need[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >/tmp/ci-cuda-emu-apt.log 2>&1; then
    tail -20 /tmp/ci-cuda-emu-apt.log
    echo "ci-cuda-emu: could not install ${need[*]}"
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

start=$(date +%s)
log=$(mktemp)
if ! npm run build:cuda-emu >"$log" 2>&1; then
  tail -40 "$log"
  echo "== build:cuda-emu failed after $(( $(date +%s) - start )) s"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "== build:cuda-emu: $(( $(date +%s) - start )) s"

start=$(date +%s)
M2KD_ADDON=cuda-emu npm run --silent test:cuda 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
echo "== test:cuda on the emulated device: exit $rc in $(( $(date +%s) - start )) s"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
rm -f "$log"
if [ -z "$line" ]; then
  echo "0 passed, 1 failed"
  exit 1
fi
# the summary line again, last, for the CI counter
echo "$line"
[ "$rc" -eq 0 ] || exit 1
exit 0
