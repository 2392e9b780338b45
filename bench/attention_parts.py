"""Is the CPU flash-attention kernel worth its call for the short parts the engine attends to?

The lean step (policy/steppers.py) splits a row's attention into parts (the shared prefix,
its group's chain, its own tokens) and calls PyTorch's CPU flash kernel once per part. This
times that kernel against plain matrix products (scores, log-sum-exp, weighted values) at
the shapes of SmolLM2-135M's decode steps (3 KV heads of 64, 3 query heads per KV head), in
fp32 and bf16, and prints both with their ratio and largest difference.

    python bench/attention_parts.py
"""

from __future__ import annotations

import time

import torch

HEAD_DIM, KV_HEADS = 64, 3
SCALE = HEAD_DIM**-0.5
SHAPES = {  # name: (batch, queries per KV head, keys)
    "own, 4 rows x 48 keys": (4, 3, 48),
    "own, 8 rows x 50 keys": (8, 3, 50),
    "own, 16 rows x 48 keys": (16, 3, 48),
    "own, 64 rows x 16 keys": (64, 3, 16),
    "own, 64 rows x 48 keys": (64, 3, 48),
    "own, 64 rows x 90 keys": (64, 3, 90),
    "prefix, 8 rows x 400 keys": (1, 24, 400),
    "prefix, 64 rows x 400 keys": (1, 192, 400),
    "group, 4 states x 2 rows x 60 keys": (4, 6, 60),
}


def flash(q, k, v):
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, scale=SCALE)
    return out.float(), lse.float()


def matmuls(q, k, v):
    scores = torch.matmul(q, k.transpose(-1, -2)) * SCALE
    lse = torch.logsumexp(scores, -1)
    return torch.matmul(torch.exp(scores - lse.unsqueeze(-1)), v).float(), lse.float()


def timed(fn, *args, repeat: int = 300) -> float:
    for _ in range(20):
        fn(*args)
    started = time.perf_counter()
    for _ in range(repeat):
        fn(*args)
    return (time.perf_counter() - started) / repeat * 1e6


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'dtype':<10}{'part':<38}{'flash us':>10}{'matmuls us':>12}{'flash/matmuls':>15}{'max diff':>10}")
    for dtype in (torch.float32, torch.bfloat16):
        for name, (batch, queries, keys) in SHAPES.items():
            q = torch.randn(batch, KV_HEADS, queries, HEAD_DIM, dtype=dtype)
            k, v = (torch.randn(batch, KV_HEADS, keys, HEAD_DIM, dtype=dtype) for _ in range(2))
            diff = (flash(q, k, v)[0] - matmuls(q, k, v)[0]).abs().max().item()
            a, b = timed(flash, q, k, v), timed(matmuls, q, k, v)
            print(f"{str(dtype)[6:]:<10}{name:<38}{a:>10.1f}{b:>12.1f}{a / b:>15.2f}{diff:>10.1e}")


if __name__ == "__main__":
    main()
