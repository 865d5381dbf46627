#!/usr/bin/env bash
# Reproduces the README's CB / COPA numbers: pretrain glm-tiny on the embedded books with the WASM
# backend, fine-tune it on CB and COPA (full SuperGLUE train, validation every epoch), and print the
# best validation metrics next to the majority baselines. Takes ~25 minutes on 2 CPU cores.
#
#   packages/finetune/scripts/superglue-tiny.sh [RUN_DIR] [SUPERGLUE_DIR]
#
# Needs the CLI built (pnpm turbo run build --filter=@blankglm/cli...).
set -euo pipefail
RUN=${1:-runs/superglue-tiny}
DATA=${2:-../shared/data/superglue}
CLI="node $(dirname "$0")/../../../apps/cli/dist/main.js"
mkdir -p "$RUN"

if [ ! -d "$RUN/pretrain/checkpoints/step-00001500" ]; then
  $CLI pretrain --preset glm-tiny --out "$RUN/pretrain" --backend wasm --steps 1500 --batch-size 8 --seq-len 128 \
    --lr 1e-3 --eval-every 250 --checkpoint-every 250 --keep 2
fi
BASE="$RUN/pretrain/checkpoints/step-00001500"

$CLI finetune "$BASE" --task cb --data "$DATA/CB" --backend wasm --epochs 10 --lr 1e-4 --seed 1 --out "$RUN/cb"
$CLI finetune "$BASE" --task copa --data "$DATA/COPA" --backend wasm --epochs 10 --lr 1e-4 --seed 1 --out "$RUN/copa"

node -e '
const fs = require("fs");
for (const [task, base] of [["cb", "majority (contradiction) 28/56 = 0.5000"], ["copa", "majority (choice 1) 55/100 = 0.5500, random 0.5"]]) {
  const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + task + "/result.json", "utf8"));
  console.log(task, "best epoch", r.best.epoch, JSON.stringify(r.best.metrics), "| baseline:", base);
}' "$RUN"
