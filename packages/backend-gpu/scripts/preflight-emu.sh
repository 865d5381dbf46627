#!/usr/bin/env bash
# Pre-flight of the prepared GPU run on the CPU emulator of the addon (build/emu; no GPU): the
# device bundles in .carry/device run the same checks as scripts/device-check.sh — the GPU checks
# (conformance quick in f32 and bf16, GLM-tiny tracking in f32 and bf16, resume, determinism), the
# checks of the two alternative kernels (one-pass layer-norm backward, one-block decode attention), the training
# benchmark with every variant on glm-tiny at toy sizes (speed means nothing here: it shows the
# script runs), and the summary. About 2 minutes on 2 cores. Run from the repo root after
# prepare-device.sh's bundling (prepare-device.sh runs it; PREFLIGHT=0 skips it there).
# Results in $OUT (default /tmp/blankglm-preflight); exits non-zero if a check failed.
set -u
cd "$(git rev-parse --show-toplevel)"
EMU=$PWD/packages/backend-gpu/build/emu
OUT=${OUT:-/tmp/blankglm-preflight}
if [ ! -f "$EMU/gpu.node" ] || [ ! -f "$EMU/libcublasLt-emu.so" ]; then
  echo "preflight: the CUDA emulator is not built ($EMU): run pnpm --filter @blankglm/backend-gpu build"
  exit 1
fi
rm -rf "$OUT" && mkdir -p "$OUT"
export BLANKGLM_GPU_ADDON=$EMU/gpu.node BLANKGLM_CUBLASLT=$EMU/libcublasLt-emu.so
. packages/backend-gpu/scripts/device/check-stages.sh
failed=0
step() {
  local name=$1
  shift
  local t0=$(date +%s)
  if "$@" > "$OUT/$name.log" 2>&1; then echo "preflight $name: ok ($(( $(date +%s) - t0 )) s)"; else
    echo "preflight $name: FAILED ($(( $(date +%s) - t0 )) s), log $OUT/$name.log:"
    grep -E '^---|FAIL|Error' "$OUT/$name.log" | head -20
    failed=1
  fi
}
step gpu-check node .carry/device/gpu-check.mjs --stages "$CORE_STAGES" --out "$OUT"
step lnfused-check env BLANKGLM_GPU_LN_BACKWARD=fused node .carry/device/gpu-check.mjs --stages "$LNFUSED_STAGES" --out "$OUT/lnfused"
step decode1-check env BLANKGLM_GPU_DECODE_ATTENTION=one-block node .carry/device/gpu-check.mjs --stages "$DECODE1_STAGES" --out "$OUT/decode1"
step train-bench node .carry/device/train-bench.mjs --models glm-tiny --f32-models glm-tiny --variants default,ln-fused,zero-fill --decode-variants "" --batch 2 --seq 128 --steps 1 --warmup 1 --no-profile --out "$OUT"
grep -q '"errors": \[\]' "$OUT/train-bench.json" 2> /dev/null || { echo "preflight train-bench: errors in $OUT/train-bench.json"; failed=1; }
step summary node packages/backend-gpu/scripts/device/summary.mjs "$OUT"
[ "$failed" = 0 ] && echo "preflight: every device program ran and every check passed on the CPU emulator" || echo "preflight: FAILED (see above)"
exit "$failed"
