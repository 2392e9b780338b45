"""The local transformers backend on tiny real Llama models built by the tests."""

import pytest
import torch

from tts_explorer.errors import UserError
from tts_explorer.policy.compute import ComputeMeter
from tts_explorer.policy.kv import common_prefix_length
from tts_explorer.policy.loading import load_policy
from tts_explorer.policy.local import TransformersPolicy


def _fresh(policy):
    """The same model and tokenizer with an empty state cache."""
    return TransformersPolicy(policy.model, policy.tokenizer, reuse_cache=policy.reuse_cache)


def _greedy_path(policy, root, steps, meter):
    """Greedy steps, each continuing the previous one's text, one prompt per call."""
    texts, prompt = [], root
    for _ in range(steps):
        completion = policy.generate([prompt], [1], max_tokens=12, temperature=0.0, stop="\n\n", meter=meter)[0][0]
        texts.append(completion.text)
        prompt += completion.text
    return texts


def test_prefix_reuse_gives_the_same_greedy_tokens(tiny_policy):
    root = tiny_policy.chat_prompt([{"role": "user", "content": "Tom has 3 apples and buys 5 more."}])
    with_reuse, without = _fresh(tiny_policy), _fresh(tiny_policy)
    without.reuse_cache = False
    meter_reuse, meter_plain = ComputeMeter(), ComputeMeter()
    a = _greedy_path(with_reuse, root, 4, meter_reuse)
    b = _greedy_path(without, root, 4, meter_plain)
    assert a == b
    assert meter_reuse.generated_tokens == meter_plain.generated_tokens
    # with reuse the prompt is encoded once; without, it is re-encoded at every step
    assert meter_plain.prefill_tokens > 2 * meter_reuse.prefill_tokens


def test_a_continuation_whose_state_was_evicted_is_recomputed_exactly(newline_model_dir, monkeypatch):
    """Kept continuations over KEPT_STATES_MB are evicted (oldest first); the next step of an
    evicted path prefills it again from the kept prompt and samples what the kept state would
    have: the same tokens, the same log-probs (each run drawing from one seeded stream)."""
    from tts_explorer.policy import local

    model, tokenizer = _model_and_tokenizer(newline_model_dir)
    root = "Tom has 3 apples and buys 5 more.\n"

    def steps(policy, meter):
        view, prompt, out, kept = policy.for_search(seed=7), root, [], []
        for _ in range(4):
            completion = view.generate([prompt], [1], max_tokens=12, temperature=1.0, stop="\n", meter=meter)[0][0]
            out.append(completion)
            prompt += completion.text
            kept.append(prompt in policy._states)
        return out, kept

    meter_kept, meter_evicted = ComputeMeter(), ComputeMeter()
    a, kept = steps(TransformersPolicy(model, tokenizer), meter_kept)
    assert all(kept[:-1]), [c.stop_reason for c in a]  # each step continued a kept state
    monkeypatch.setattr(local, "KEPT_STATES_MB", 0)  # every continuation evicted as soon as kept
    b, kept = steps(TransformersPolicy(model, tokenizer), meter_evicted)
    assert not any(kept)
    assert [(c.text, c.token_ids) for c in b] == [(c.text, c.token_ids) for c in a]
    assert [c.logprob_sum for c in b] == pytest.approx([c.logprob_sum for c in a], abs=1e-4)
    # a kept state feeds only its one pending token; each miss feeds the path's tokens again
    assert meter_evicted.prefill_tokens > meter_kept.prefill_tokens


def test_batched_candidates_match_single_runs(tiny_policy):
    policy = _fresh(tiny_policy)
    prompts = [policy.chat_prompt([{"role": "user", "content": q}]) for q in ("How many pens?", "Yes or No?")]
    batched = policy.generate(prompts, [2, 3], max_tokens=10, temperature=0.0)
    assert [len(group) for group in batched] == [2, 3]
    for prompt, group in zip(prompts, batched):
        single = _fresh(tiny_policy).generate([prompt], [1], max_tokens=10, temperature=0.0)[0][0]
        assert {c.text for c in group} == {single.text}
        assert all(c.n_tokens == single.n_tokens for c in group)


def test_shared_prefix_is_fed_once(tiny_policy):
    policy = _fresh(tiny_policy)
    prompt = policy.chat_prompt([{"role": "user", "content": "Sam has 4 * 6 = 24 pens."}])
    n_prompt = len(policy.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    meter = ComputeMeter()
    policy.generate([prompt], [8], max_tokens=5, temperature=1.0, meter=meter)
    assert meter.prefill_tokens == n_prompt  # not 8 x n_prompt
    meter2 = ComputeMeter()
    policy.generate([prompt], [8], max_tokens=5, temperature=1.0, meter=meter2)
    assert meter2.prefill_tokens == 1  # the cached prompt: only its last token is fed again


def test_stops_at_blank_line(newline_model_dir):
    policy = load_policy(str(newline_model_dir), dtype="fp32")
    policy.reseed(3)
    prompt = policy.chat_prompt([{"role": "user", "content": "go"}])
    results = policy.generate([prompt], [48], max_tokens=400, temperature=1.0, stop="\n\n")[0]
    stopped = [c for c in results if c.stop_reason == "stop"]
    assert len(stopped) >= 40  # this model reaches "\n\n" after ~15 tokens
    for c in stopped:
        assert c.text.endswith("\n\n") and c.text.count("\n\n") == 1
    for c in results:
        assert 1 <= c.n_tokens <= 400 and c.logprob_sum < 0
    # continuing a stopped candidate reuses its state: one pending token, no prefill of the path
    meter = ComputeMeter()
    policy.generate([prompt + stopped[0].text], [2], max_tokens=3, temperature=1.0, meter=meter)
    assert meter.prefill_tokens == 1


def test_choice_probs_are_normalised(tiny_policy):
    prompt = tiny_policy.chat_prompt([{"role": "user", "content": "Is 2 + 2 = 4? Answer Yes or No."}])
    (probs,) = tiny_policy.choice_probs([prompt], ["Yes", "No"])
    assert len(probs) == 2 and abs(sum(probs) - 1) < 1e-5 and all(0 < p < 1 for p in probs)


def test_unreadable_model_paths(tmp_path):
    with pytest.raises(UserError, match="cannot read the GGUF"):
        load_policy(str(tmp_path / "missing.gguf"))
    with pytest.raises(UserError, match="not a model directory"):
        load_policy(str(tmp_path))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot load model"):
        load_policy(str(tmp_path / "bad"))


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "newline_model_dir", "tiny_gemma_dir"])
def test_engine_matches_plain_generate(fixture, request):
    """The engine's batched, cache-reusing sampler gives what transformers' generate gives (greedy)."""
    from tts_explorer.policy.naive import NaivePolicy

    policy = load_policy(str(request.getfixturevalue(fixture)), dtype="fp32")
    engine, naive = _fresh(policy), NaivePolicy(policy.model, policy.tokenizer)
    root = engine.chat_prompt([{"role": "user", "content": "Tom has 3 apples and buys 5 more."}])
    prompt_engine = prompt_naive = root
    for _ in range(3):  # three steps of one path, each continuing the last
        ((a,),) = engine.generate([prompt_engine], [1], max_tokens=10, temperature=0.0)
        ((b,),) = naive.generate([prompt_naive], [1], max_tokens=10, temperature=0.0)
        assert (a.text, a.n_tokens, a.stop_reason) == (b.text, b.n_tokens, b.stop_reason)
        assert a.logprob_sum == pytest.approx(b.logprob_sum, abs=1e-3)
        prompt_engine, prompt_naive = prompt_engine + a.text, prompt_naive + b.text


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_gemma_dir"])
def test_the_engine_reads_a_prompt_as_its_tokenizer_encodes_it(fixture, request):
    """BOS first where the tokenizer puts it first (Gemma's, by its post-processor; the flag
    add_bos_token is lost when such a tokenizer is saved and loaded, as a converted GGUF is), and
    greedy continuations equal transformers' generate on the tokenizer's own encoding."""
    policy = load_policy(str(request.getfixturevalue(fixture)), dtype="fp32")
    tokenizer = policy.tokenizer
    prompt = "Question: Tom has 3 apples and buys 5 more.\nAnswer: "
    own = tokenizer(prompt)["input_ids"]
    assert (own[0] == tokenizer.bos_token_id) == (fixture == "tiny_gemma_dir")
    assert policy._prompt_ids(prompt) == own
    ((out,),) = _fresh(policy).generate([prompt], [1], max_tokens=12, temperature=0.0, stop=None)
    ids = torch.tensor([own])
    expected = policy.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
    assert out.text == tokenizer.decode(expected[0, len(own) :], skip_special_tokens=True)
    steps = policy.step_logprobs(prompt, ["Tom has 8.", "The answer is 8."])
    with torch.inference_mode():
        text_ids = torch.tensor([tokenizer(prompt + "Tom has 8.\n\n")["input_ids"]])
        logprobs = policy.model(text_ids).logits[0, :-1].float().log_softmax(-1)
    first = len(own)
    step_ids = text_ids[0, first : first + len("Tom has 8.")]  # one token per character
    expected_step = logprobs[first - 1 : first - 1 + len(step_ids)].gather(1, step_ids[:, None]).mean()
    assert steps[0] == pytest.approx(float(expected_step), abs=1e-4)


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_gemma_dir"])
def test_step_logprobs_read_the_shared_few_shot_part_from_the_cache_and_equal_the_models_forward(fixture, request):
    """Scoring given steps (the confidence scorer on a data set): the second problem's prompt
    shares the first one's few-shot part, which is not fed again; every step's mean log-prob
    still equals transformers' forward over the whole text (the lean Llama step and the
    transformers step each)."""
    policy = load_policy(str(request.getfixturevalue(fixture)), dtype="fp32")
    shots = "Question: Ann has 2 pens and buys 3.\nAnswer: 2 + 3 = 5.\n\n" * 6
    paths = [
        (shots + "Question: Tom has 3 apples and buys 5 more.\nAnswer: ", ["Tom has 3 + 5 = 8.", "The answer is 8."]),
        (shots + "Question: Kai has 9 cards and loses 4.\nAnswer: ", ["He has 9 - 4 = 6.", "The answer is 6."]),
    ]
    policy, meter = _fresh(policy), ComputeMeter()
    fed = []
    for prompt, steps in paths:
        before = meter.prefill_tokens
        got = policy.step_logprobs(prompt, steps, meter=meter)
        fed.append(meter.prefill_tokens - before)
        text = prompt + "".join(step + "\n\n" for step in steps)
        ids, offsets = policy._prompt_encoding(text, offsets=True)
        with torch.inference_mode():
            logprobs = policy.model(torch.tensor([ids])).logits[0, :-1].float().log_softmax(-1)
        start = len(prompt)
        for step, value in zip(steps, got):
            where = [i for i, (a, _) in enumerate(offsets) if start <= a < start + len(step)]
            expected = logprobs[[i - 1 for i in where]].gather(1, torch.tensor(ids)[where, None]).mean()
            assert value == pytest.approx(float(expected), abs=1e-4)
            start += len(step) + 2
    whole = len(policy._prompt_ids(paths[1][0] + "".join(s + "\n\n" for s in paths[1][1])))
    shared = common_prefix_length(policy._prompt_ids(paths[0][0]), policy._prompt_ids(paths[1][0]))
    assert shared > 100
    assert fed[1] <= whole - shared + 1  # the few-shot part came from the cache
    assert policy.step_logprobs(paths[0][0], []) == [] and policy.step_logprobs(paths[0][0], [""]) == [0.0]


def test_a_new_prompt_reuses_the_leading_tokens_it_shares_with_a_kept_one(tiny_policy):
    few_shot = [{"role": "system", "content": "Solve it one step at a time. " * 4}]
    first = tiny_policy.chat_prompt(few_shot + [{"role": "user", "content": "Tom has 3 apples."}])
    second = tiny_policy.chat_prompt(few_shot + [{"role": "user", "content": "Ann has 7 pears."}])
    policy, meter = _fresh(tiny_policy), ComputeMeter()
    policy.warm(first)
    before = meter.prefill_tokens
    out = policy.generate([second], [1], max_tokens=10, temperature=0.0, meter=meter)[0][0]
    a, b = policy._prompt_ids(first), policy._prompt_ids(second)
    shared = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    assert shared > 50
    assert meter.prefill_tokens - before == len(b) - shared  # only the differing tail is fed
    plain = _fresh(tiny_policy)
    plain.reuse_cache = False
    assert out.text == plain.generate([second], [1], max_tokens=10, temperature=0.0)[0][0].text


def test_concurrent_calls_are_serialised(tiny_policy):
    """The app's preload thread warms prompts while a first search may run: both go through one lock,
    and each thread gets what it would get alone."""
    import threading

    policy = _fresh(tiny_policy)
    prompts = [policy.chat_prompt([{"role": "user", "content": f"Question {i}: how many?"}]) for i in range(4)]
    alone = [_fresh(tiny_policy).generate([p], [2], max_tokens=8, temperature=0.0)[0][0].text for p in prompts]
    errors, results = [], {}

    def search(i):
        try:
            results[i] = policy.generate([prompts[i]], [2], max_tokens=8, temperature=0.0)[0][0].text
        except Exception as exc:  # noqa: BLE001 (any failure fails the test)
            errors.append(exc)

    def warm():
        try:
            for i in range(10):
                policy.warm(policy.chat_prompt([{"role": "user", "content": f"warm {i}"}]))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=warm)] + [threading.Thread(target=search, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and [results[i] for i in range(4)] == alone


def test_a_gemma3_policy_searches_with_caps_stop_and_its_compute(tiny_gemma_dir):
    """Gemma 3 (the gemma3-270m registry model's architecture) runs every step of a search on the
    engine: a beam search finishes within the token cap, its FLOPs count each parameter a token
    is multiplied with (the tied embedding once), and Stop ends it."""
    from tts_explorer.config import SearchConfig
    from tts_explorer.policy.compute import flops_params
    from tts_explorer.runs import RunRequest, ScorerChoice, search_events
    from tts_explorer.search import RunLimits

    policy = load_policy(str(tiny_gemma_dir), dtype="fp32")
    model = policy.model
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert flops_params(model) == sum(p.numel() for p in model.parameters())
    config = SearchConfig(strategy="beam", n=4, beam_width=2, max_steps=3, step_tokens=8, final_tokens=8)
    question = "Tom has 3 apples and buys 5 more."
    capped = RunRequest(question, "8", config, ScorerChoice("confidence"), "gemma", limits=RunLimits(tokens=20))
    tree = capped.new_tree(policy.name)
    list(search_events(tree, policy, capped))
    compute = tree.meta["compute"]
    assert tree.meta["stopped"] == "at this server's limit of 20 tokens per run", (compute, len(tree))
    assert 0 < compute["generated_tokens"] <= 20 + 4  # checked at every decoded token of a batch of 4
    tokens = compute["generated_tokens"] + compute["prefill_tokens"]
    assert compute["policy_flops"] == pytest.approx(2 * flops_params(model) * tokens)

    request = RunRequest(question, "8", config, ScorerChoice("confidence"), "gemma")
    tree = request.new_tree(policy.name)
    assert len(list(search_events(tree, policy, request, should_stop=lambda: True))) <= 2
    assert tree.meta["stopped"] == "on request"
    tree = request.new_tree(policy.name)
    list(search_events(tree, policy, request))
    assert tree.meta["stopped"] is None and tree.candidates()


def _search(policy, question, strategy, seed, should_stop=None):
    from tts_explorer.config import SearchConfig
    from tts_explorer.search import RunLimits, new_tree, search

    config = SearchConfig(strategy=strategy, n=4, beam_width=2, max_steps=3, step_tokens=24, final_tokens=24, seed=seed)
    tree = new_tree(question, config, "confidence")
    for _ in search(tree, policy, config, "confidence", should_stop=should_stop, limits=RunLimits()):
        pass
    return tree


def _shape(tree):
    return [(n.parent, n.text, n.status, n.score, n.mean_logprob) for n in tree]


def _concurrently(policy, *runs):
    """Run the searches on threads, their first calls held (the engine thread kept busy) until
    all wait, so they share a batch."""
    import threading
    import time

    from tts_explorer.policy import engine_thread

    out = [None] * len(runs)
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, runs[i]())) for i in range(len(runs))]
    release = threading.Event()
    holder = threading.Thread(target=engine_thread.run, args=(release.wait,))
    holder.start()
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(policy._waiting) < len(runs) and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    holder.join()
    for thread in threads:
        thread.join(timeout=120)
    return out


def test_searches_on_threads_share_batches_and_each_draws_as_it_would_alone(newline_model_dir):
    """Four seeded searches of four strategies whose calls share the decode loop (each beside
    three others): each tree is the tree it grows alone (its own random stream, meter and kept
    states; the attention over the calls' stacked prefixes and groups reads each its own), and
    the loop's turns held several searches' rows."""
    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    runs = [
        ("Ann has 2 cats.", "beam", 1),
        ("Bo has 5 dogs.", "best_of_n", 2),
        ("Cy has 4 hens and 2 cows.", "dvts", 3),
        ("Di has 9 pens.", "majority", 4),
    ]
    alone = [_search(policy, *run) for run in runs]
    policy.forget()
    together = _concurrently(policy, *[lambda run=run: _search(policy, *run) for run in runs])
    assert policy.batched_calls >= 1
    for one, shared in zip(alone, together):
        assert _shape(shared) == _shape(one)
        assert shared.meta["compute"]["generated_tokens"] == one.meta["compute"]["generated_tokens"]


def test_stop_in_a_shared_batch_stops_only_its_own_search(newline_model_dir):
    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    alone = _search(policy, "Bo has 5 dogs.", "beam", 2)
    policy.forget()
    stopped, kept = _concurrently(
        policy,
        lambda: _search(policy, "Ann has 2 cats.", "beam", 1, should_stop=lambda: True),
        lambda: _search(policy, "Bo has 5 dogs.", "beam", 2),
    )
    assert len(stopped) == 1 and stopped.meta["stopped"]  # nothing but the problem: stopped before its first step
    assert _shape(kept) == _shape(alone) and not kept.meta["stopped"]


def _model_and_tokenizer(directory):
    policy = load_policy(str(directory), dtype="fp32")
    return policy.model, policy.tokenizer


def test_a_call_joins_the_running_loop_and_returns_before_the_call_it_joined(newline_model_dir):
    """Continuous batching: a short call made while a long one decodes joins the loop at the next
    token (no wait for the long call's end), its thread returns while the long call still runs,
    and each call gets what it gets alone."""
    import threading
    import time

    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    long_call = dict(prompts=["Ann has 2 cats.", "Cy has 1 hat."], n=[2, 1], max_tokens=40, temperature=0.7, stop=None)
    short_call = dict(prompts=["Bo has 5 dogs."], n=[3], max_tokens=4, temperature=0.7, stop=None)
    alone_long = policy.generate(**long_call, generator=torch.Generator().manual_seed(1))
    alone_short = policy.generate(**short_call, generator=torch.Generator().manual_seed(2))
    assert min(c.n_tokens for cs in alone_long for c in cs) > 20  # the long call outlasts the short one
    policy.forget()
    turns, out, returned = [], {}, threading.Event()

    def short():
        out["short"] = policy.generate(**short_call, generator=torch.Generator().manual_seed(2))
        returned.set()

    thread = threading.Thread(target=short)

    def watch():  # called by the loop at every turn of the long call
        turns.append(returned.is_set())
        if len(turns) == 3:
            thread.start()
            deadline = time.monotonic() + 30
            while not policy._waiting and time.monotonic() < deadline:
                time.sleep(0.005)
        return False

    together = policy.generate(**long_call, generator=torch.Generator().manual_seed(1), should_stop=watch)
    thread.join(timeout=60)

    def texts(results):
        return [[(c.text, c.n_tokens, round(c.logprob_sum, 4)) for c in cs] for cs in results]

    assert texts(together) == texts(alone_long)
    assert texts(out["short"]) == texts(alone_short)
    joined_at = turns.index(True)  # the first turn after the short call's thread returned
    assert joined_at <= 3 + 4 + 2 < len(turns)  # it joined at once and ran 4 tokens while the long call went on
    assert policy.batched_calls >= 4


def _continuation_segments(policy) -> list:
    """Weak references to every segment the kept continuations hold that no kept prompt does."""
    import weakref

    prompts = {id(s) for state, _ in policy._roots.values() for s in (state.cache.chain() if state.cache else [])}
    held = {id(s): s for state in policy._states.values() if state.cache for s in state.cache.chain()}
    return [weakref.ref(s) for key, s in held.items() if key not in prompts]


@pytest.mark.parametrize("stopped", [False, True])
def test_a_searchs_segments_are_freed_once_it_ends_or_is_stopped(newline_model_dir, stopped):
    """The keys and values a search's continuations hold are released when the search is over
    (its last call's states go at the next call of another search), whether it ran to its end
    or was stopped in the middle of a call; nothing is left in the decode loop."""
    import gc

    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    refs = []

    def stop():  # Stop pressed during the second call, once the first call's states are kept
        if stopped and policy._states and not refs:
            refs.extend(_continuation_segments(policy))
        return bool(refs) and policy._runs != []

    first = _search(policy, "Ann has 2 cats.", "beam", 1, should_stop=stop)
    assert bool(first.meta["stopped"]) == stopped
    if not stopped:
        refs = _continuation_segments(policy)
    assert refs  # the search left continuations to free
    _search(policy, "Bo has 5 dogs.", "beam", 2)  # its first call drops the first search's states
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert not policy._runs and not policy._waiting
    assert len(set(policy._owners.values())) == 1  # only the last search's continuations are kept


def _streamed_search(policy, should_stop=None):
    """A seeded beam search; also the tree's size at each NodesAdded event."""
    from tts_explorer.config import SearchConfig
    from tts_explorer.events import NodesAdded
    from tts_explorer.search import RunLimits, new_tree, search

    config = SearchConfig(strategy="beam", n=8, beam_width=2, max_steps=3, step_tokens=40, final_tokens=40, seed=1)
    tree = new_tree("Ann has 2 cats.", config, "confidence")
    stop = None if should_stop is None else (lambda: should_stop(tree))
    events = search(tree, policy, config, "confidence", should_stop=stop, limits=RunLimits())
    return tree, [len(tree) for event in events if isinstance(event, NodesAdded)]


def _nested(tree, node_id=0):
    node = tree.nodes[node_id]
    return (node.text, node.score, node.status, [_nested(tree, c) for c in node.children])


def test_a_step_is_in_the_tree_as_soon_as_its_row_ends(newline_model_dir):
    """The engine hands over each row as it ends: the page can draw a first node before the
    call's longest row is done. At the call's end the children are in row order, so the tree
    is the one the same search grows when the rows come back together (ids aside; this
    search's pool has no ties, which ids would break)."""
    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    streamed, sizes = _streamed_search(policy)
    assert sizes[:3] == [2, 3, 4]  # one node at a time
    policy.forget()
    policy.streams_rows = False
    together, sizes = _streamed_search(policy)
    assert sizes[0] == 9  # the first step's 8 rows at once
    assert _nested(streamed) == _nested(together)
    assert [n.text for n in streamed] != [n.text for n in together]  # ids: the rows ended in another order


def test_stop_mid_call_keeps_the_rows_that_ended(newline_model_dir):
    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    tree, sizes = _streamed_search(policy, should_stop=lambda tree: len(tree) > 3)
    assert tree.meta["stopped"] and 4 <= len(tree) < 9
    assert not policy._runs and not policy._waiting


def test_the_dtype_follows_the_cpu_whatever_gpu_there_is_and_a_bad_tts_dtype_is_one_line(monkeypatch):
    import types

    from tts_explorer.policy import loading
    from tts_explorer.policy.loading import default_dtype

    monkeypatch.delenv("TTS_DTYPE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the engine runs on the CPU all the same
    for flags, dtype in (("flags: fpu avx2 fma", torch.float32), ("flags: avx2 avx512f avx512_bf16", torch.bfloat16)):
        monkeypatch.setattr(loading, "Path", lambda _, f=flags: types.SimpleNamespace(read_text=lambda: f))
        assert default_dtype() == dtype
    monkeypatch.setenv("TTS_DTYPE", "fp32")
    assert default_dtype() == torch.float32
    for bad in ("int8", "x" * 10_000, "BF16 "):
        monkeypatch.setenv("TTS_DTYPE", bad)
        with pytest.raises(UserError, match="TTS_DTYPE must be one of bf16, fp32, fp16") as caught:
            default_dtype()
        assert "\n" not in str(caught.value) and len(str(caught.value)) < 120


def test_calls_ending_together_leave_nothing_stacked(tiny_policy):
    """Two calls stepped together to their last token: their prefixes were stacked for the
    shared attention, and the copies go when the loop has no calls left."""
    from tts_explorer.policy import engine_thread
    from tts_explorer.policy.compute import ComputeMeter

    policy = _fresh(tiny_policy)
    call = dict(n=[2], max_tokens=5, temperature=0.0, stop=None)
    out = _concurrently(
        policy,
        lambda: policy.generate(["Ann has 2 cats."], meter=ComputeMeter(), **call),
        lambda: policy.generate(["Bo has 5 dogs and 3 birds."], meter=ComputeMeter(), **call),
    )
    assert [len(c[0]) for c in out] == [2, 2] and all(x.n_tokens == 5 for c in out for x in c[0])
    assert policy.batched_calls >= 4
    engine_thread.run(lambda: None)  # the turn in which the calls ended is over
    assert not policy.step._stacks._kept


def test_a_row_going_on_in_place_samples_what_one_call_per_step_samples(tiny_model_dir):
    """Continuous batching across a chain's steps: with `next_step`, a row that stops on its
    stop string goes on to its next step in the same call, in place. One seeded row draws the
    same tokens, with the same log-probs, as one call per step continuing the last (the tiny
    random model reads its whole context, and its samples hold an "F" every ~20 characters:
    the stop here); each step's state is kept under the step before's, and continuing the path
    from it reads what a fresh prefill of the same text reads."""
    model, tokenizer = _model_and_tokenizer(tiny_model_dir)
    root, stop = "Tom has 3 apples and buys 5 more.\n", "F"
    per_step, prompt = [], root
    view = TransformersPolicy(model, tokenizer).for_search(seed=2)
    for _ in range(3):  # (its third step samples a special token, which the text drops: no going on after it)
        completion = view.generate([prompt], [1], max_tokens=40, temperature=1.0, stop=stop)[0][0]
        per_step.append(completion)
        if completion.stop_reason != "stop":
            break
        prompt += completion.text
    assert sum(c.stop_reason == "stop" for c in per_step) >= 2  # the chain has steps to go on to

    policy = TransformersPolicy(model, tokenizer)
    view = policy.for_search(seed=2)
    ended = []

    def next_step(row, completion):
        return (40, stop) if len(ended) + 1 < len(per_step) else None

    ((last,),) = view.generate([root], [1], 40, 1.0, stop, on_row=lambda *done: ended.append(done), next_step=next_step)
    assert [c.text for _, c in ended] == [c.text for c in per_step] and last.text == per_step[-1].text
    assert [c.logprob_sum for _, c in ended] == pytest.approx([c.logprob_sum for c in per_step], abs=1e-4)
    assert all(row == 0 for row, _ in ended)
    first, second = root + per_step[0].text, root + per_step[0].text + per_step[1].text
    assert policy._states[second].cache.parent is policy._states[first].cache
    meter = ComputeMeter()
    ((kept,),) = view.generate([second], [1], max_tokens=12, temperature=0.0, stop=None, meter=meter)
    assert meter.prefill_tokens == 1
    ((fresh,),) = TransformersPolicy(model, tokenizer).generate([second], [1], 12, 0.0, stop=None)
    assert (kept.text, kept.token_ids) == (fresh.text, fresh.token_ids)
    assert kept.logprob_sum == pytest.approx(fresh.logprob_sum, abs=1e-4)


def test_rows_going_on_in_place_leave_one_by_one_and_match_their_own_greedy_paths(tiny_model_dir):
    """Several prompts' rows go on for different numbers of steps in one call (rows of one prompt
    sharing its state, rows leaving while others go on): each row's steps are its prompt's greedy
    path taken one call per step."""
    model, tokenizer = _model_and_tokenizer(tiny_model_dir)
    prompts, stop = ["Tom has 3 apples and buys 5 more.\n", "Ann has 2 cats.\n"], "F"
    steps = {0: 3, 1: 1, 2: 2}  # row -> steps it takes; rows 0 and 1 are the first prompt's
    expected = []
    for row, prompt in enumerate(prompts[:1] * 2 + prompts[1:]):
        path, text = [], prompt
        for _ in range(steps[row]):
            ((c,),) = TransformersPolicy(model, tokenizer).generate([text], [1], 30, 0.0, stop=stop)
            path.append((c.text, round(c.logprob_sum, 3)))
            if c.stop_reason != "stop":
                break
            text += c.text
        expected.append(path)
    assert len(expected[0]) == 3 and len(expected[2]) == 2  # the greedy paths stop on "F"
    got = {row: [] for row in steps}

    def next_step(row, completion):
        return (30, stop) if len(got[row]) + 1 < steps[row] else None

    TransformersPolicy(model, tokenizer).generate(
        prompts,
        [2, 1],
        max_tokens=30,
        temperature=0.0,
        stop=stop,
        on_row=lambda row, c: got[row].append((c.text, round(c.logprob_sum, 3))),
        next_step=next_step,
    )
    assert [got[row] for row in steps] == expected


def _chains_search(policy, n, seed=3, strategy="best_of_n", **settings):
    """A seeded search of chains (confidence scorer); its events and the policy's calls."""
    from tts_explorer.config import SearchConfig
    from tts_explorer.search import RunLimits, new_tree, search

    calls = []
    generate = policy.generate
    policy.generate = lambda *a, **k: calls.append(1) or generate(*a, **k)
    config = SearchConfig(strategy=strategy, n=n, max_steps=4, step_tokens=24, final_tokens=24, seed=seed, **settings)
    tree = new_tree("Ann has 2 cats.", config, "confidence")
    try:
        events = list(search(tree, policy, config, "confidence", limits=RunLimits()))
    finally:
        del policy.generate
    return tree, events, len(calls)


def test_independent_chains_go_on_without_waiting_for_the_iteration(newline_model_dir):
    """Best-of-N's chains grow in one call where the engine lets rows go on in place: a chain
    starts its next step as soon as its last one ends. The tree is what one call per iteration
    grows (the same draws for one chain), every chain runs to its end, each step is scored, and
    IterationDone comes once per iteration in order, the last with nothing left."""
    from tts_explorer.events import IterationDone, NodesScored

    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    tree, events, calls = _chains_search(policy, 6)
    assert calls == 1
    done = [e for e in events if isinstance(e, IterationDone)]
    depth = {0: 0}
    for node in list(tree)[1:]:
        depth[node.id] = depth[node.parent] + 1
        assert node.iteration == depth[node.id] - 1 and node.score is not None
        assert len(node.children) == (0 if node.terminal else 1)
    assert max(depth.values()) >= 3 and len(tree.nodes[0].children) == 6
    assert all(tree.nodes[i].terminal for i in depth if i and depth[i] == 4)
    assert [e.iteration for e in done] == list(range(max(depth.values()))) and done[-1].active == 0
    scored = {i for e in events if isinstance(e, NodesScored) for i in e.ids}
    assert scored == set(depth) - {0}
    for e in done:  # every step of an iteration is scored before it is announced done
        before = {i for x in events[: events.index(e)] if isinstance(x, NodesScored) for i in x.ids}
        assert {i for i in depth if i and depth[i] - 1 == e.iteration} <= before

    one, _, _ = _chains_search(policy, 1, seed=5)  # a chain of four steps
    policy.continues_rows = False
    per_iteration, _, calls = _chains_search(policy, 1, seed=5)
    assert calls == 4
    assert _nested(one) == _nested(per_iteration)


def test_stop_while_chains_go_on_in_place_keeps_their_steps_and_leaves_nothing_behind(newline_model_dir):
    """Stop in the middle of best-of-N's one call, after chains went on in place: the steps
    that ended stay in the tree (their chains' later steps among them), the call leaves the
    decode loop, and none of its states is kept."""
    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    turns = []

    def stop():
        turns.append(1)
        return len(turns) > 40

    tree = _search(policy, "Bo has 5 dogs.", "best_of_n", 5, should_stop=stop)
    assert tree.meta["stopped"]
    steps = list(tree)[1:]
    assert any(tree.nodes[n.parent].parent is not None for n in steps)  # a chain went on in place
    assert any(not n.terminal and not n.children for n in steps)  # and was stopped in its next step
    assert not policy._runs and not policy._waiting and not policy._states


def test_deepconf_stops_its_chains_in_place_as_one_call_per_iteration_does(newline_model_dir):
    """DeepConf's main phase grows its chains in one call, a chain stopped on the engine's thread
    as soon as its running confidence falls below the warm-up's threshold: the stopped steps are
    pruned, below the threshold, without children, the others at or above it; with one chain in
    each phase the tree is the one that one call per iteration grows."""
    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    settings = dict(strategy="deepconf", warmup=3, confidence_quantile=0.9)
    tree, _, calls = _chains_search(policy, 12, seed=4, **settings)
    meta = tree.meta["deepconf"]
    assert calls == 2  # the warm-up's chains, then the main phase's
    main_chains = set(tree.nodes[0].children[3:])  # the warm-up's 3 chains come first
    main = [n for n in tree if n.id and tree.path(n.id)[0].id in main_chains]
    assert len(main_chains) == 9
    stopped = [n for n in tree if n.status == "pruned"]
    assert meta["stopped"] == len(stopped) > 0
    assert all(n.confidence < meta["threshold"] and not n.children for n in stopped)
    assert all(n.confidence >= meta["threshold"] for n in main if n.status != "pruned" and not n.terminal)

    settings["warmup"] = 1  # one chain in each phase: the same draws both ways
    one, _, _ = _chains_search(policy, 2, seed=7, **settings)
    assert one.meta["deepconf"]["stopped"] == 1  # the main chain is stopped after a step
    policy.continues_rows = False
    per_iteration, _, calls = _chains_search(policy, 2, seed=7, **settings)
    assert calls > 2
    assert _nested(one) == _nested(per_iteration)
    assert one.meta["deepconf"] == per_iteration.meta["deepconf"]


def _forked_call(policy, root, stop, temperature, pause=0.0, seed=9):
    """A call of three rows from `root` with forks, handled as a search does: rows 0 and 1 park
    at their first step while row 2 goes on in place for up to three steps; once both have parked,
    row 1 is dropped and two rows are forked from row 0 (after `pause` seconds, the call
    waiting meanwhile); the call is closed when they and row 2 have ended. Returns the parked
    row's completion, the forked rows' completions and row 2's, and the call's results."""
    import queue
    import threading
    import time

    from tts_explorer.policy.base import PARK, Forks

    view, forks, ended, handed = policy.for_search(seed), Forks(), {}, queue.SimpleQueue()
    results, steps = {}, []

    def next_step(row, completion):
        if row != 2:
            return PARK
        steps.append(completion)
        return (30, stop) if len(steps) < 3 else None

    def call():
        results["out"] = view.generate(
            [root],
            [3],
            30,
            temperature,
            stop,
            on_row=lambda *d: handed.put(d),
            next_step=next_step,
            forks=forks,
        )

    thread = threading.Thread(target=call)
    thread.start()
    while not {2, 3, 4} <= ended.keys():
        row, completion = handed.get(timeout=60)
        forks.wait()  # the turn's rows are all handed over; the call waits
        ended[row] = completion
        while not handed.empty():
            ended.update([handed.get()])
        if {0, 1} <= ended.keys() and forks.next_row == 3:
            assert forks.parked == {0, 1}, [c.stop_reason for c in ended.values()]  # both stopped on the stop string
            time.sleep(pause)
            assert all(run.held or not run.live for run in policy._runs)  # no row of the call advanced
            forks.drop([1])
            assert forks.fork(0, 2, (30, stop), key=9) == range(3, 5)
        forks.resume()
    forks.close()
    thread.join(timeout=60)
    assert not thread.is_alive()
    return ended[0], [ended[3], ended[4]], results["out"]


def test_forked_rows_sample_what_a_call_from_the_parked_state_samples(tiny_model_dir):
    """Forks: rows started from a parked row's state join the running call and sample what a
    call of their own from the parked text samples (greedy here: the same text and log-probs,
    their keys read from the parked row's state, not recomputed); the call keeps the new
    states under the parked one, lets the dropped row's state go and leaves the loop."""
    model, tokenizer = _model_and_tokenizer(tiny_model_dir)
    root, stop = "Tom has 3 apples and buys 5 more.\n", "F"
    policy = TransformersPolicy(model, tokenizer)
    meter = ComputeMeter()
    parked, forked, out = _forked_call(policy, root, stop, 0.0)
    assert parked.stop_reason == "stop" and [len(group) for group in out] == [3, 2]
    ((alone,),) = TransformersPolicy(model, tokenizer).generate([root + parked.text], [1], 30, 0.0, stop, meter=meter)
    for completion in forked:
        assert (completion.text, completion.token_ids) == (alone.text, alone.token_ids)
        assert completion.logprob_sum == pytest.approx(alone.logprob_sum, abs=1e-4)
    assert not policy._runs and not policy._waiting
    after = root + parked.text + forked[0].text
    if forked[0].stop_reason == "stop":  # kept: its state's own tokens under the parked row's
        assert policy._states[after].cache.parent is policy._states[root + parked.text].cache


def test_forked_rows_draw_the_same_however_long_the_caller_takes(tiny_model_dir):
    """A seeded call's forked rows draw from a stream of their own (the call's seed and the
    fork's key) and join when the caller resumes the call: the same samples however long the
    caller took to fork."""
    model, tokenizer = _model_and_tokenizer(tiny_model_dir)
    root, stop = "Ann has 2 cats.\n", "F"
    at_once = _forked_call(TransformersPolicy(model, tokenizer), root, stop, 1.0)
    later = _forked_call(TransformersPolicy(model, tokenizer), root, stop, 1.0, pause=0.3)
    assert [c.text for c in at_once[1]] == [c.text for c in later[1]]
    assert [c.text for c in at_once[2][0]] == [c.text for c in later[2][0]]  # and row 2's last step


def test_dvts_grows_every_subtree_in_one_call(newline_model_dir):
    """DVTS where the engine forks rows: one call, each subtree expanding again as soon as its
    own candidates are scored. A seeded search grows the same tree twice (the forked rows join
    when the search resumes the call, drawing from streams of their own), and every subtree
    keeps DVTS's shape: each expansion has beam-width candidates, at most one of them goes on
    (the best by path score), the pruned ones have no children; IterationDone comes once per
    iteration in order. (Greedy against one call per iteration: test_embedded_model.)"""
    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    settings = dict(strategy="dvts", beam_width=2)
    for seed, expected_calls in ((6, 1), (4, 2)):  # seed 4: a step cut inside a token goes on in a call of its own
        tree, events, calls = _chains_search(policy, 8, seed=seed, **settings)
        again, _, _ = _chains_search(policy, 8, seed=seed, **settings)
        assert calls == expected_calls and _nested(tree) == _nested(again)
        _assert_dvts_shape(tree, events)
    assert not policy._runs and not policy._waiting


def _assert_dvts_shape(tree, events):
    from tts_explorer.events import IterationDone

    expansions = [n for n in tree if n.children]
    assert len(expansions) > 4  # the start node and subtrees that went on
    for node in expansions:
        children = [tree.nodes[c] for c in node.children]
        assert len(children) == (8 if node.id == 0 else 2)
        for subtree in {c.subtree for c in children}:  # the start node's children: every subtree's first candidates
            siblings = [c for c in children if c.subtree == subtree]
            going_on = [c for c in siblings if c.children]
            assert len(siblings) == 2 and len(going_on) <= 1 and all(c.status != "pruned" for c in going_on)
            if going_on:
                assert going_on[0].agg_score == max(c.agg_score for c in siblings)
    done = [e.iteration for e in events if isinstance(e, IterationDone)]
    assert done == list(range(len(done))) and len(done) == max(n.iteration for n in tree if n.id) + 1


def test_stop_while_dvts_subtrees_fork_keeps_their_steps_and_leaves_nothing_behind(newline_model_dir):
    """Stop in the middle of DVTS's one call, after subtrees forked: the steps that ended stay
    in the tree, the call leaves the decode loop and none of its states is kept."""
    policy = TransformersPolicy(*_model_and_tokenizer(newline_model_dir))
    turns = []

    def stop():  # a few turns after a forked row (beyond the call's first 4) ended
        turns.append(any(row >= 4 for run in policy._runs for row in run.done))
        return sum(turns) > 2

    tree = _search(policy, "Bo has 5 dogs.", "dvts", 7, should_stop=stop)
    assert tree.meta["stopped"]
    assert any(tree.nodes[n.parent].parent is not None for n in list(tree)[1:])  # a subtree forked
    assert not policy._runs and not policy._waiting and not policy._states
