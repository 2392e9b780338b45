"""llama.cpp behind the policy protocol, on the embedded GGUF (runs where llama-cpp-python
is installed: `bash scripts/install.sh --llama-cpp`; it is an optional extra)."""

import pytest

pytest.importorskip("llama_cpp")

from tts_explorer.config import SearchConfig  # noqa: E402
from tts_explorer.policy.compute import ComputeMeter  # noqa: E402
from tts_explorer.search import new_tree, run_to_end  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama():
    from tts_explorer.policy.embedded import embedded_gguf
    from tts_explorer.policy.llamacpp import LlamaCppPolicy
    from tts_explorer.policy.loading import load_policy

    engine = load_policy("embedded")
    return LlamaCppPolicy(embedded_gguf(), engine.tokenizer, engine.flops_params, threads=2)


def test_candidates_stop_at_a_blank_line_and_are_metered(llama):
    prompt = llama.chat_prompt([{"role": "user", "content": "What is 3 + 4? Answer step by step."}])
    meter = ComputeMeter()
    llama.reseed(0)
    groups = llama.generate([prompt, prompt + "Step 1:"], [3, 2], max_tokens=48, temperature=0.8, meter=meter)
    assert [len(g) for g in groups] == [3, 2]
    assert len({c.text for c in groups[0]}) > 1  # each candidate is its own sample
    for completion in (c for g in groups for c in g):
        assert 0 < completion.n_tokens <= 48 and completion.logprob_sum < 0
        assert completion.stop_reason in ("stop", "eos", "length")
        if completion.stop_reason == "stop":
            assert completion.text.endswith("\n\n") and "\n\n" not in completion.text[:-2]
    assert meter.generated_tokens == sum(c.n_tokens for g in groups for c in g)
    # siblings after the first reuse llama.cpp's cached prompt: far fewer prompt tokens than 5 full prompts
    assert meter.prefill_tokens < 3 * len(llama._tokens(prompt))


def test_greedy_is_repeatable_and_choice_probs_are_normalised(llama):
    prompt = llama.chat_prompt([{"role": "user", "content": "Name a prime number."}])
    a = llama.generate([prompt], [1], max_tokens=16, temperature=0.0)[0][0]
    llama.forget()
    b = llama.generate([prompt], [1], max_tokens=16, temperature=0.0)[0][0]
    assert a.text == b.text
    probs = llama.choice_probs([prompt], ["Yes", "No"])[0]
    assert abs(sum(probs) - 1) < 1e-6 and all(0 < p < 1 for p in probs)


def test_a_beam_search_runs_on_llama_cpp(llama):
    config = SearchConfig(strategy="beam", n=4, beam_width=2, max_steps=3, step_tokens=48, final_tokens=64, seed=0)
    tree = new_tree(
        "Tom has 3 apples and buys 5 more. How many apples does he have?", config, "arithmetic", "8", llama.name
    )
    run_to_end(tree, llama, config, "arithmetic")
    assert len(tree) > 4 and tree.meta["compute"]["generated_tokens"] > 0
