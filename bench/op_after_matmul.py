"""What a small tensor operation costs alone and right after a matrix product of the size a
decode step runs (6 rows times a 576 x 3072 bf16 weight, prepacked as the engine packs it), on
the engine thread, in microseconds: the product streams its weights through the caches, and
the operation after it finds them cold. Why the engine counts its operations per layer (README,
*Many visitors at once on the local engine*). Run it alone.

    python bench/op_after_matmul.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from tts_explorer.policy import engine_thread
from tts_explorer.policy.steppers import _Linear

ROWS, HIDDEN, OUT = 6, 576, 3072


def _micros(fn, repeats: int = 3000) -> float:
    for _ in range(50):
        fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats * 1e6


def measure() -> list[str]:
    torch.manual_seed(0)
    product = _Linear(torch.randn(OUT, HIDDEN, dtype=torch.bfloat16))
    x = (torch.randn(ROWS, HIDDEN) * 3).to(torch.bfloat16)
    weight = (torch.rand(HIDDEN) + 0.5).to(torch.bfloat16)
    wide = x.float()
    ops = {
        "view": lambda: x.view(ROWS, 1, HIDDEN),
        "to float": lambda: x.float(),
        "add (float)": lambda: wide + wide,
        "RMSNorm": lambda: F.rms_norm(x.float(), (HIDDEN,), eps=1e-5).to(x.dtype) * weight,
    }
    alone_product = _micros(lambda: product(x))
    lines = [f"the product alone: {alone_product:.1f} us"]
    for name, op in ops.items():
        after = _micros(lambda op=op: (product(x), op())) - alone_product
        lines.append(f"{name:<12} alone {_micros(op):6.1f} us, after the product {after:6.1f} us")
    return lines


if __name__ == "__main__":
    print("\n".join(engine_thread.run(measure)))
