# The gpu-check.mjs stages that scripts/device-check.sh runs on the GPU and scripts/preflight-emu.sh
# runs on the CPU emulator: one list, so the pre-flight checks what the device run will. Sourced
# from the repo root.
CORE_STAGES=quick,parity,generation,train,trainbf16,resume,determinism,bf16
# With the one-pass layer-norm backward (BLANKGLM_GPU_LN_BACKWARD=fused) and with the one-block decode attention (BLANKGLM_GPU_DECODE_ATTENTION=one-block).
LNFUSED_STAGES=quick,fullnorm,bf16,train,trainbf16
DECODE1_STAGES=quick
