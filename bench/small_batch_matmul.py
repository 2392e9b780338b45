"""What a forward's matrix products cost at the small row counts most of a search's forwards run
at (bench/search_breakdown.py), with the weights read from memory as in a real forward (every
matrix of every block, cycled, so none stays in cache): the engine's bf16 products (oneDNN,
prepacked) against PyTorch's 4-bit groupwise kernel (`_weight_int4pack_mm_for_cpu`, group 32,
the layout of the embedded GGUF's Q4_1 blocks) and its int8 per-channel one. The matrices
have the embedded model's shapes (its config) and random values: only the time is measured.
Run it alone: it times the CPU.

    python bench/small_batch_matmul.py [--rows 1,4,8,16,32,64]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch

from tts_explorer.policy.loading import load_policy

GROUP = 32


def shapes(config) -> list[tuple[int, int]]:
    """(out, in) of one block's matrices as the engine multiplies by them (q/k/v and gate/up fused)."""
    hidden, inner = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    qkv = (config.num_attention_heads + 2 * config.num_key_value_heads) * head_dim
    return [(qkv, hidden), (hidden, config.num_attention_heads * head_dim), (2 * inner, hidden), (hidden, inner)]


def median_ms(fn, reps: int = 10) -> float:
    fn()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="1,4,8,16,32,64")
    args = parser.parse_args()
    config = load_policy().model.config
    block = shapes(config)
    matrices = block * config.num_hidden_layers
    torch.manual_seed(0)
    bf16, int4, int8 = [], [], []
    for out, inner in matrices:
        weight = torch.randn(out, inner, dtype=torch.bfloat16)
        bf16.append(torch.ops.mkldnn._reorder_linear_weight(weight))
        levels = torch.randint(0, 16, (out, inner), dtype=torch.int32)
        scales_zeros = (torch.rand(inner // GROUP, out, 2) * 0.01).to(torch.bfloat16)
        int4.append((torch.ops.aten._convert_weight_to_int4pack_for_cpu(levels, 1), scales_zeros))
        int8.append((torch.randint(-128, 127, (out, inner), dtype=torch.int8), torch.rand(out, dtype=torch.bfloat16)))
    megabytes = sum(o * i for o, i in matrices) * 2 / 2**20
    print(
        f"{config.num_hidden_layers} blocks x {len(block)} matrices {block}, {megabytes:.0f} MB in bf16; "
        "milliseconds per forward's matrix products (the output head not included):"
    )
    print(f"{'rows':>5} {'bf16':>8} {'int4':>8} {'int8':>8} {'bf16/int4':>10}")

    def run_bf16(inputs):
        for packed, (_, inner) in zip(bf16, matrices):
            torch.ops.mkldnn._linear_pointwise(inputs[inner], packed, None, "none", [], "")

    def run_int4(inputs):
        for (packed, scales_zeros), (_, inner) in zip(int4, matrices):
            torch.ops.aten._weight_int4pack_mm_for_cpu(inputs[inner], packed, GROUP, scales_zeros)

    def run_int8(inputs):
        for (weight, scales), (_, inner) in zip(int8, matrices):
            torch.ops.aten._weight_int8pack_mm(inputs[inner], weight, scales)

    for rows in (int(r) for r in args.rows.split(",")):
        inputs = {inner: torch.randn(rows, inner, dtype=torch.bfloat16) for _, inner in block}
        a, b, c = (median_ms(partial(run, inputs)) for run in (run_bf16, run_int4, run_int8))
        print(f"{rows:>5} {a:>8.2f} {b:>8.2f} {c:>8.2f} {a / b:>9.2f}x", flush=True)


if __name__ == "__main__":
    main()
