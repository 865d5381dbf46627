#!/usr/bin/env python3
"""The PyTorch peer of benchmarks/gpu/train-bench.mjs: Hugging Face BertForMaskedLM (base, large)
training tokens/s at the same shapes (sequence 512, batch 32), bf16 autocast, fused AdamW, eager
and torch.compile. Random token ids, 15% of positions labelled (the usual MLM rate). Run on the
same card in the same script (packages/backend-gpu/scripts/device-check.sh); results go to
$OUT/hf_peer.json after every configuration.

Usage: python3 benchmarks/gpu/hf_peer.py [--models base,large] [--modes eager,compile]
         [--batch 32] [--seq 512] [--steps 10] [--warmup 3] [--out DIR]
"""
import argparse
import json
import os
import time

import torch
import transformers
from transformers import BertConfig, BertForMaskedLM

SHAPES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
VOCAB = 30522


def flops_per_token(shape, seq):
    """Training FLOPs per token: 6 per weight use (layers, MLM transform, logits over all positions) + attention."""
    h, layers = shape["hidden_size"], shape["num_hidden_layers"]
    layer_weights = layers * (4 * h * h + 2 * h * shape["intermediate_size"])
    return 6 * layer_weights + 12 * layers * h * seq + 6 * (h * h + h * VOCAB)


def bench(size, mode, batch, seq, steps, warmup):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, max_position_embeddings=512, **SHAPES[size])
    model = BertForMaskedLM(config).cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)
    step_model = torch.compile(model) if mode == "compile" else model
    ids = torch.randint(1000, VOCAB, (batch, seq), device="cuda")
    labels = ids.clone()
    labels[torch.rand(batch, seq, device="cuda") >= 0.15] = -100
    times = []
    t_first = time.perf_counter()
    for s in range(warmup + steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if s >= warmup:
            times.append(time.perf_counter() - start)
        elif s == 0:
            print(f"  {size} {mode}: first step (incl. compile) {time.perf_counter() - t_first:.1f} s", flush=True)
    times.sort()
    median = times[len(times) // 2]
    fpt = flops_per_token(SHAPES[size], seq)
    del step_model, model, optimizer
    torch.cuda.empty_cache()
    return {
        "model": f"bert-{size}",
        "mode": mode,
        "batch": batch,
        "seq": seq,
        "medianStepMs": median * 1000,
        "tokensPerSecond": batch * seq / median,
        "flopsPerToken": fpt,
        "achievedTflops": fpt * batch * seq / median / 1e12,
        "loss": float(loss.detach().float()),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="base,large")
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    results = {
        "card": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "runs": [],
        "errors": [],
    }

    def save():
        tmp = os.path.join(a.out, "hf_peer.json.tmp")
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, os.path.join(a.out, "hf_peer.json"))

    print(f"hf_peer on {results['card']}, torch {results['torch']}, transformers {results['transformers']}", flush=True)
    for mode in a.modes.split(","):
        for size in a.models.split(","):
            batch = a.batch
            while batch >= 1:
                try:
                    r = bench(size, mode, batch, a.seq, a.steps, a.warmup)
                    results["runs"].append(r)
                    print(f"bert-{size} {mode}: {r['tokensPerSecond']:.0f} tokens/s (batch {batch}, {r['medianStepMs']:.1f} ms/step, {r['achievedTflops']:.1f} TFLOP/s)", flush=True)
                    break
                except torch.OutOfMemoryError as e:
                    results["errors"].append(f"bert-{size} {mode} batch {batch}: out of memory")
                    torch.cuda.empty_cache()
                    batch //= 2
                except Exception as e:  # a failing configuration must not stop the others
                    results["errors"].append(f"bert-{size} {mode}: {type(e).__name__}: {e}")
                    print(f"bert-{size} {mode} failed: {type(e).__name__}: {e}", flush=True)
                    break
            save()
    save()


if __name__ == "__main__":
    main()
