#!/usr/bin/env bash
# The one prepared GPU run: from the repo root on the GPU machine (no network, no pnpm install,
# no node_modules): nvidia-smi, the GPU checks (conformance quick, parity with the PyTorch
# fixtures, blank filling against the reference, GLM-tiny tracking the reference in f32 and in
# bf16, checkpoint resume, determinism, the quick tier in bf16 with tensor-core attention; buffers
# allocated 'uninitialized' start as NaN there, so a kernel reading one before writing it fails),
# the training benchmark (bf16, with a per-op GPU time breakdown; f32 too
# for the models in F32_MODELS, e.g. F32_MODELS=glm-base) beside its PyTorch peer (eager), and a
# table. Stage limits sum to 510 s (about 220 s used on an H200). The torch.compile peer, the full conformance tier and the
# scalar-attention bf16 run are separate: STAGES_EXTRA=1 adds them (about 200 s more).
# Every stage has its own time limit and a failing stage never stops the later ones.
#
# Prepared on the development machine by packages/backend-gpu/scripts/prepare-device.sh, which
# fills .carry/ (node.xz, device/*.mjs bundles) and builds packages/backend-gpu/build/gpu.node.
# Device command:
#   xz -dkf .carry/node.xz && chmod +x .carry/node && export PATH=$PWD/.carry:$PATH; bash packages/backend-gpu/scripts/device-check.sh
# Carry: .carry and packages/backend-gpu/build
set -u
ROOT=$(pwd)
OUT=${OUT:-$ROOT/device-out}
mkdir -p "$OUT"
export OUT
export BLANKGLM_GPU_ADDON=$ROOT/packages/backend-gpu/build/gpu.node
export PYTHONUNBUFFERED=1
STAGES=$OUT/stages.txt
: > "$STAGES"
T0=$(date +%s)

# stage NAME LIMIT_SECONDS COMMAND...: runs with a time limit, tees to $OUT/NAME.log, records rc.
stage() {
  local name=$1 limit=$2
  shift 2
  local start=$(date +%s)
  echo
  echo "=================== [$name] limit ${limit}s (t+$((start - T0))s): $*"
  timeout -k 5 "$limit" "$@" > >(tee "$OUT/$name.log") 2>&1
  local rc=$?
  local took=$(( $(date +%s) - start ))
  [ "$rc" = 124 ] && echo "!!! [$name] hit its ${limit}s limit"
  echo "=================== [$name] rc=$rc in ${took}s"
  echo "$name rc=$rc ${took}s" >> "$STAGES"
}

echo "device-check in $ROOT, results in $OUT"
. packages/backend-gpu/scripts/device/check-stages.sh
if ! command -v node > /dev/null; then
  echo "!!! node is not on PATH: run 'xz -dkf .carry/node.xz && chmod +x .carry/node && export PATH=\$PWD/.carry:\$PATH' first"
fi
for f in .carry/device/gpu-check.mjs .carry/device/train-bench.mjs .carry/device/attention-bench.mjs .carry/device/norm-bench.mjs .carry/device/host-overhead.mjs packages/backend-gpu/build/gpu.node; do
  [ -e "$f" ] || echo "!!! missing $f (run packages/backend-gpu/scripts/prepare-device.sh on the development machine and carry .carry + packages/backend-gpu/build)"
done

stage env 20 bash -c 'node --version; python3 --version; ls -la .carry .carry/device packages/backend-gpu/build; ldconfig -p | grep -i cublaslt | head -3'
stage nvidia-smi 20 nvidia-smi
stage gpu-check 100 node .carry/device/gpu-check.mjs --stages "$CORE_STAGES" --out "$OUT"
# The two-pass layer-norm backward (an opt-in experiment): correctness on the card (conformance
# quick and the layer-norm ops of the full tier, and GLM-tiny training in f32 and in bf16), then its
# timing alone; it joins the training benchmark's variants only when both passed.
stage lnsplit-check 50 env BLANKGLM_GPU_LN_BACKWARD=split node .carry/device/gpu-check.mjs --stages "$LNSPLIT_STAGES" --out "$OUT/lnsplit"
stage lnsplit-bench 20 env BLANKGLM_GPU_LN_BACKWARD=split node .carry/device/norm-bench.mjs
LN_SPLIT_OK=0
grep -q '^lnsplit-check rc=0 ' "$STAGES" && grep -q '^lnsplit-bench rc=0 ' "$STAGES" && LN_SPLIT_OK=1
# The split decode attention (an opt-in experiment): the quick tier (its decode cases cover several
# 128-key splits) with it; blank filling is then timed with both kernels if it passed.
stage decodesplit-check 30 env BLANKGLM_GPU_DECODE_ATTENTION=split node .carry/device/gpu-check.mjs --stages "$DECODESPLIT_STAGES" --out "$OUT/decodesplit"
DECODE_VARIANTS=one-block
grep -q '^decodesplit-check rc=0 ' "$STAGES" && DECODE_VARIANTS=one-block,split
# VARIANTS: kernel / allocation choices timed one after another on the same model and card
# (benchmarks/gpu/train-bench.mjs): zero-fill = every buffer memset as before the model marked
# its op outputs 'uninitialized'; ln-split = the two-pass layer-norm backward.
DEFAULT_VARIANTS=zero-fill,default
[ "$LN_SPLIT_OK" = 1 ] && DEFAULT_VARIANTS=$DEFAULT_VARIANTS,ln-split
stage train-bench 150 node .carry/device/train-bench.mjs --models glm-base,glm-large --f32-models "${F32_MODELS:-none}" --variants "${VARIANTS:-$DEFAULT_VARIANTS}" --decode-variants "$DECODE_VARIANTS" --batch 32 --seq 512 --steps 6 --warmup 2 --out "$OUT"
stage attention-bench 40 node .carry/device/attention-bench.mjs --out "$OUT"
stage norm-bench 20 node .carry/device/norm-bench.mjs
# The host side of a training step on this machine's CPU (no device work): what the GPU can hide.
stage host-overhead 30 bash -c 'node .carry/device/host-overhead.mjs --steps 10 && node .carry/device/host-overhead.mjs --model glm-large --steps 5'
stage hf-eager 70 python3 benchmarks/gpu/hf_peer.py --modes eager --models base,large --batch 32 --seq 512 --steps 8 --warmup 3 --out "$OUT/hf-eager"
if [ "${STAGES_EXTRA:-0}" = 1 ]; then
  stage hf-compile 110 python3 benchmarks/gpu/hf_peer.py --modes compile --models base,large --batch 32 --seq 512 --steps 8 --warmup 3 --out "$OUT/hf-compile"
  stage conformance-full 90 node .carry/device/gpu-check.mjs --stages full,bf16scalar --out "$OUT"
fi

echo
echo "=================== stages (total $(( $(date +%s) - T0 ))s)"
cat "$STAGES"
echo
echo "=================== summary"
node packages/backend-gpu/scripts/device/summary.mjs "$OUT" || echo "(summary failed: see the logs above)"
