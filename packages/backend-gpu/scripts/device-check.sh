#!/usr/bin/env bash
# The one prepared GPU run: from the repo root on the GPU machine (no network, no pnpm install,
# no node_modules): nvidia-smi, the GPU checks (conformance quick, parity with the PyTorch
# fixtures, blank filling against the reference, GLM-tiny tracking the reference in f32 and in
# bf16, checkpoint resume, determinism, the quick tier in bf16 with tensor-core attention; buffers
# allocated 'uninitialized' start as NaN there, so a kernel reading one before writing it fails),
# the same checks with the one-pass layer-norm backward and the one-block decode attention (the
# alternatives to the defaults), the training benchmark (bf16, with a per-op GPU time breakdown;
# f32 too for the models in F32_MODELS, e.g. F32_MODELS=glm-base) beside its PyTorch peer (eager),
# and a table. Stage limits sum to 400 s (about 180 s used on an H200). The torch.compile peer, the
# full conformance tier, the scalar-attention bf16 run, the attention benchmark and the host-side
# timing are separate: STAGES_EXTRA=1 adds them (about 350 s more).
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
# The alternatives to the default kernels, still selectable: the one-pass layer-norm backward
# (conformance quick and the layer-norm ops of the full tier, GLM-tiny training in f32 and bf16)
# and the one-block decode attention (the quick tier's decode cases); each joins the benchmark
# (training, resp. blank filling) only when its checks passed.
stage lnfused-check 50 env BLANKGLM_GPU_LN_BACKWARD=fused node .carry/device/gpu-check.mjs --stages "$LNFUSED_STAGES" --out "$OUT/lnfused"
stage decode1-check 30 env BLANKGLM_GPU_DECODE_ATTENTION=one-block node .carry/device/gpu-check.mjs --stages "$DECODE1_STAGES" --out "$OUT/decode1"
DEFAULT_VARIANTS=default
grep -q '^lnfused-check rc=0 ' "$STAGES" && DEFAULT_VARIANTS=default,ln-fused
DECODE_VARIANTS=split
grep -q '^decode1-check rc=0 ' "$STAGES" && DECODE_VARIANTS=split,one-block
# VARIANTS: kernel / allocation choices timed one after another on the same model and card
# (benchmarks/gpu/train-bench.mjs), e.g. VARIANTS=default,zero-fill (every buffer memset).
stage train-bench 150 node .carry/device/train-bench.mjs --models glm-base,glm-large --f32-models "${F32_MODELS:-none}" --variants "${VARIANTS:-$DEFAULT_VARIANTS}" --decode-variants "$DECODE_VARIANTS" --batch 32 --seq 512 --steps 10 --warmup 2 --out "$OUT"
stage norm-bench 20 node .carry/device/norm-bench.mjs
stage hf-eager 70 python3 benchmarks/gpu/hf_peer.py --modes eager --models base,large --batch 32 --seq 512 --steps 8 --warmup 3 --out "$OUT/hf-eager"
if [ "${STAGES_EXTRA:-0}" = 1 ]; then
  stage attention-bench 40 node .carry/device/attention-bench.mjs --out "$OUT"
  # The host side of a training step on this machine's CPU (no device work): what the GPU can hide.
  stage host-overhead 60 bash -c 'node .carry/device/host-overhead.mjs --steps 10 && node .carry/device/host-overhead.mjs --model glm-large --steps 5'
  stage hf-compile 110 python3 benchmarks/gpu/hf_peer.py --modes compile --models base,large --batch 32 --seq 512 --steps 8 --warmup 3 --out "$OUT/hf-compile"
  # The full tier spends most of its time in the reference backend (one CPU thread): >120 s on an H200 machine.
  stage conformance-full 180 node .carry/device/gpu-check.mjs --stages full,bf16scalar --out "$OUT"
fi

echo
echo "=================== stages (total $(( $(date +%s) - T0 ))s)"
cat "$STAGES"
echo
echo "=================== summary"
node packages/backend-gpu/scripts/device/summary.mjs "$OUT" || echo "(summary failed: see the logs above)"
