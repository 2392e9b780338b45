"""How fast the embedded engine could generate on this machine, from its matrix products
alone, against how fast it does: the best matrix product torch reaches here in the engine's
dtype (bf16 where the CPU computes it natively, else fp32; a large square one), the model's
multiply-adds per token (every weight matrix a token goes through, the output head included),
the tokens per second those two allow, the engine's own matrix products timed on the real
weights at a batch's width, and raw generation measured (64 rows, no stop string). Then int8
dynamic quantization (torch.ao's `linear_dynamic`, deprecated by PyTorch) on the same matrices
and real inputs (the hidden states of a 64-token prompt captured in the transformers
forward): its speed-up and its error per matrix, beside the engine's own dtype's error (both
against the fp32 product). Everything runs on the engine thread. Run it alone: it times the CPU.

    python bench/engine_ceiling.py [--rows 64] [--tokens 64]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from tts_explorer.policy import engine_thread
from tts_explorer.policy.loading import DTYPES, load_policy
from tts_explorer.policy.steppers import fused_matrices

QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have now?"


def seconds(fn, x, reps: int = 30) -> float:
    """Median seconds of fn(x) over reps calls, after one warm call."""
    fn(x)
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def real_weights(model) -> dict[str, torch.Tensor]:
    """The weight of each kind of matrix the engine multiplies by (one block's, fused as the
    engine fuses them), and the output head's."""
    with torch.no_grad():
        block = {name: weight for name, (weight, _) in fused_matrices(model.model.layers[0]).items()}
    return block | {"lm_head": model.lm_head.weight.detach()}


def captured_inputs(policy, rows: int) -> dict[str, torch.Tensor]:
    """The inputs of each kind of matrix in the transformers forward over a prompt of `rows`
    tokens (layer 15's; the output head's after the final norm)."""
    model = policy.model
    ids = policy.tokenizer(QUESTION * 8, return_tensors="pt")["input_ids"][:, :rows]
    layer = model.model.layers[len(model.model.layers) // 2]
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_pre_hook(lambda m, args, name=name: seen.setdefault(name, args[0][0].detach()))
        for name, module in (
            ("qkv", layer.self_attn.q_proj),
            ("o", layer.self_attn.o_proj),
            ("gate_up", layer.mlp.gate_proj),
            ("down", layer.mlp.down_proj),
            ("lm_head", model.lm_head),
        )
    ]
    with torch.inference_mode():
        model(input_ids=ids, logits_to_keep=0)
    for hook in hooks:
        hook.remove()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    policy = load_policy()
    engine_thread.run(measure, policy, args)  # every torch call on the engine thread, as the decode loop runs


def measure(policy, args) -> None:
    torch.manual_seed(0)
    step = policy.step
    dtype = {torch_dtype: name for name, torch_dtype in DTYPES.items()}[step.dtype]  # the names TTS_DTYPE takes
    size = 2048
    a, b = torch.randn(size, size, dtype=step.dtype), torch.randn(size, size, dtype=step.dtype)
    peak = 2 * size**3 / seconds(lambda x: x @ b, a, 10) / 1e9
    print(f"torch {dtype} matrix product {size}x{size}: {peak:.1f} GFLOP/s on {torch.get_num_threads()} threads")
    matrices = {name: step.blocks[0][name] for name in ("qkv", "o", "gate_up", "down")} | {"lm_head": step.lm_head}
    weights = real_weights(policy.model)
    per_layer = sum(weights[n].numel() for n in ("qkv", "o", "gate_up", "down"))
    blocks = len(step.blocks)
    macs = per_layer * blocks + weights["lm_head"].numel()
    flops = 2 * macs
    print(f"multiply-adds per token: {macs / 1e6:.1f}M ({blocks} blocks and the output head): {flops / 1e6:.0f} MFLOP")
    print(f"tokens per second the best matrix product allows: {peak * 1e9 / flops:.0f}")

    inputs = captured_inputs(policy, args.rows)
    spent, spent_q = 0.0, 0.0
    head = f"{dtype:>4} ms  GFLOP/s  {dtype:>4} error   int8 ms  speed-up  int8 error"
    print(f"\nat {args.rows} rows (real weights and inputs)  {head}")
    for name, linear in matrices.items():
        x = inputs[name].reshape(-1, inputs[name].shape[-1])[: args.rows].float().contiguous()
        w = weights[name].float()
        t = seconds(linear, x.to(step.dtype))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's quantized tensors are deprecated: measured, not shipped
            scale = (w.abs().amax(1) / 127).clamp(min=1e-12)
            q = torch.quantize_per_channel(w, scale, torch.zeros(len(w), dtype=torch.long), 0, torch.qint8)
            packed = torch.ops.quantized.linear_prepack(q, None)
        quantized = lambda v, packed=packed: torch.ops.quantized.linear_dynamic(v, packed, True)  # noqa: E731
        tq = seconds(quantized, x)
        exact = x @ w.T
        error = ((quantized(x) - exact).norm() / exact.norm()).item()
        own_error = ((linear(x.to(step.dtype)).float() - exact).norm() / exact.norm()).item()
        count = 1 if name == "lm_head" else blocks
        spent, spent_q = spent + t * count, spent_q + tq * count
        gflops = 2 * w.numel() * args.rows / t / 1e9
        shape = f"{name:<8} {tuple(w.shape)!s:<15} x {count:<2}"
        errors = f"{own_error:10.2%}  {tq * 1e3:8.3f}  {t / tq:7.2f}x  {error:9.2%}"
        print(f"{shape:<44}{t * 1e3:7.3f}  {gflops:7.1f}  {errors}")
    ceiling = args.rows / spent
    print(f"matrix products of one {args.rows}-row step: {spent * 1e3:.1f} ms {dtype}, {spent_q * 1e3:.1f} ms int8")
    allowed = f"{ceiling:.0f} {dtype}, {args.rows / spent_q:.0f} int8"
    print(f"tokens per second the engine's matrix products allow at {args.rows} rows: {allowed}")

    prompt = policy.chat_prompt([{"role": "user", "content": QUESTION}])
    policy.generate([prompt], [args.rows], max_tokens=4, temperature=0.8, stop=None)
    started = time.perf_counter()
    out = policy.generate([prompt], [args.rows], max_tokens=args.tokens, temperature=0.8, stop=None)
    wall = time.perf_counter() - started
    made = sum(c.n_tokens for c in out[0])
    share = spent * (made / args.rows) / wall
    print(
        f"raw generation, {args.rows} rows x {args.tokens} tokens: {made} tokens in {wall:.1f} s = "
        f"{made / wall:.0f} tok/s "
        f"({made / wall / ceiling:.0%} of the matrix-product ceiling; matrix products ~{share:.0%} of the wall time)"
    )
    saved = (spent - spent_q) * made / args.rows
    print(
        f"int8 dynamic in every matrix, the rest unchanged: at most {wall / (wall - saved):.2f}x faster generation, "
        "with the error per matrix above"
    )


if __name__ == "__main__":
    main()
