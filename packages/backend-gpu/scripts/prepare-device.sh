#!/usr/bin/env bash
# Prepares the GPU run on the development machine (run from the repo root): builds the packages
# and the addon, bundles the device programs into .carry/device (no node_modules needed there),
# compresses this machine's node into .carry/node.xz if missing, prints the carry sizes, and runs
# the device programs on the CPU emulator (scripts/preflight-emu.sh; PREFLIGHT=0 skips it).
# Then run scripts/device-check.sh on the GPU machine (its header has the command).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
grep -qx '/.carry/' .git/info/exclude 2> /dev/null || grep -qx '/.carry/' .gitignore || echo /.carry/ >> .git/info/exclude
GPU_BUILD=required pnpm turbo run build --filter=@blankglm/backend-gpu...
(cd packages/backend-gpu && npx tsup --config tsup.device.config.ts)
mkdir -p .carry
[ -f .carry/node.xz ] || xz -T2 -c "$(command -v node)" > .carry/node.xz
du -sh .carry packages/backend-gpu/build
du -scb .carry packages/backend-gpu/build | tail -1 | awk '{ printf "carry total: %.1f MiB (limit 64 MiB)\n", $1 / 1048576 }'
# The device programs once on the CPU emulator of the addon, so a broken bundle or check shows here, not on the GPU's clock.
[ "${PREFLIGHT:-1}" = 1 ] && bash packages/backend-gpu/scripts/preflight-emu.sh
