"""The lean Llama-family step and the generic transformers step compute the same logits as
the model's own forward, with a shared prefix, states at several depths of one tree, rows
repeating their parent and rows leaving the batch."""

import pytest
import torch
from tiny_models import build_tokenizer

from tts_explorer.policy.kv import RowState, Segment, compacted, empty_state, kept_bytes
from tts_explorer.policy.local import TransformersPolicy
from tts_explorer.policy.steppers import HFStep, LlamaStep, make_step


def _tiny(kind: str):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    common = dict(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        initializer_range=0.2,
    )
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common, attention_bias=True, mlp_bias=True))
    elif kind == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))  # q/k/v carry biases
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=97, n_embd=64, n_layer=2, n_head=4))
    with torch.no_grad():  # non-zero biases, so that dropping one would show
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.2)
    return model.eval()


def _reference_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1].float()


@pytest.mark.parametrize("kind, expected", [("llama", LlamaStep), ("qwen2", LlamaStep), ("gpt2", HFStep)])
def test_step_matches_the_models_forward(kind, expected):
    model = _tiny(kind)
    step = make_step(model)
    assert isinstance(step, expected)
    policy = TransformersPolicy(model, build_tokenizer())
    policy.step = step
    prompt = [5, 9, 14, 3, 7, 21, 8]
    meter = policy.meter
    root = policy._prefill(empty_state(prompt + [11]), meter, "policy").as_root()
    assert root.cache is not None and root.cache.parent is None and root.length == len(prompt)
    # two rows after the shared prompt: one fed three more tokens, one none
    longer = policy._prefill(RowState(root.cache, root.next_pos, (11, 30, 31, 32)), meter, "policy")
    assert longer.cache.parent is root.cache and longer.cache.length == 3  # its own tokens only
    batch = step.new_batch([longer, root], spare=4)
    assert batch.prefix is root.cache and batch.group_width == 3
    logits = step(torch.tensor([[32], [11]]), torch.tensor([[longer.next_pos], [root.next_pos]]), batch)
    assert torch.allclose(logits[0], _reference_logits(model, prompt + [11, 30, 31, 32]), atol=1e-4)
    assert torch.allclose(logits[1], _reference_logits(model, prompt + [11]), atol=1e-4)
    # one more token each: the keys and values written by the last step are read back
    logits = step(torch.tensor([[40], [41]]), torch.tensor([[longer.next_pos + 1], [root.next_pos + 1]]), batch)
    assert torch.allclose(logits[0], _reference_logits(model, prompt + [11, 30, 31, 32, 40]), atol=1e-4)
    assert torch.allclose(logits[1], _reference_logits(model, prompt + [11, 41]), atol=1e-4)
    # a row's new state holds its own two tokens under its parent's segment
    child = batch.extract(0, longer.next_pos + 2, [50])
    assert child.cache.parent is longer.cache and child.cache.length == 2 and child.length == len(prompt) + 5
    # gathered again with a state of another root: nothing is shared, each chain is one group
    mixed = step.new_batch([child, empty_state([5])], spare=2)
    assert mixed.prefix is None
    logits = step(torch.tensor([[50], [5]]), torch.tensor([[longer.next_pos + 2], [0]]), mixed)
    assert torch.allclose(logits[0], _reference_logits(model, prompt + [11, 30, 31, 32, 40, 50]), atol=1e-4)
    assert torch.allclose(logits[1], _reference_logits(model, [5]), atol=1e-4)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_a_tree_of_states_is_read_without_copying_ancestors(kind):
    """Rows repeat their parents (a beam's children), parents sit at different depths of one
    tree, some rows end early: every row's logits match the model's forward on its full text."""
    model = _tiny(kind)
    policy = TransformersPolicy(model, build_tokenizer())
    meter = policy.meter
    prompt = [5, 9, 14, 3, 7, 21, 8]
    root = policy._prefill(empty_state(prompt + [11]), meter, "policy").as_root()
    a = policy._prefill(RowState(root.cache, root.next_pos, (11, 30, 31)), meter, "policy")  # depth 1
    b = policy._prefill(RowState(a.cache, a.next_pos, (31, 40, 41, 42, 43)), meter, "policy")  # depth 2
    c = policy._prefill(RowState(a.cache, a.next_pos, (31, 44)), meter, "policy")  # b's sibling
    texts = {id(a): prompt + [11, 30, 31], id(b): prompt + [11, 30, 31, 40, 41, 42, 43]}
    texts[id(c)] = prompt + [11, 30, 31, 44]
    states = [b, c]
    batch = policy.step.new_batch(states, spare=1)
    assert batch.prefix.end == a.length  # the chain both share, root and a: one prefix
    rows = torch.tensor([0, 0, 1, 0, 1])  # b's three children and c's two, interleaved
    logits = policy.step(
        torch.tensor([[s.pending[0]] for s in states]), torch.tensor([[s.next_pos] for s in states]), batch
    )
    batch, logits = batch.select(rows), logits[rows]
    fed = [list(texts[id(states[g])]) for g in rows.tolist()]
    position = torch.tensor([[states[g].next_pos + 1] for g in rows.tolist()])
    for turn in range(3):
        if turn == 2:  # two rows end: the rest go on without them
            keep = compacted(5, {0, 3})
            assert keep == [4, 1, 2]  # the gap at 0 filled from the end, one row moved
            batch.keep(keep)  # in place
            logits, position, fed = logits[keep], position[keep], [fed[i] for i in keep]
        for row, ids in enumerate(fed):
            assert torch.allclose(logits[row], _reference_logits(model, ids), atol=1e-4), (turn, row)
        new = [60 + turn + row for row in range(len(fed))]
        logits = policy.step(torch.tensor([[t] for t in new]), position, batch)
        fed = [ids + [t] for ids, t in zip(fed, new)]
        position = position + 1
    for row, ids in enumerate(fed):
        assert torch.allclose(logits[row], _reference_logits(model, ids), atol=1e-4)
    child = batch.extract(1, int(position[1]), [70])
    assert child.cache.parent is states[int(batch.row_group[1])].cache and child.cache.length == 4
    assert kept_bytes([child.cache]) == sum(s.nbytes for s in child.cache.chain())


def test_buffers_grow_past_their_spare_room():
    model = _tiny("llama")
    step = make_step(model)
    batch = step.new_batch([empty_state([1])], spare=1)
    ids = [1]
    for position in range(12):
        logits = step(torch.tensor([[ids[-1]]]), torch.tensor([[position]]), batch)
        assert torch.allclose(logits[0], _reference_logits(model, ids), atol=1e-4)
        ids.append(int(logits[0].argmax()))


def test_kept_states_are_capped_oldest_first():
    """Kept states are counted with their shared ancestors once; over the cap the oldest go."""
    from tts_explorer.policy.local import _capped

    def segment(length, parent=None):
        return Segment((torch.zeros(2, length, 4),), (torch.zeros(2, length, 4),), parent)

    root = segment(100)  # 6,400 bytes
    states = {f"s{i}": RowState(segment(10, root), 110, (1,)) for i in range(8)}  # 640 bytes each
    assert kept_bytes(s.cache for s in states.values()) == 6400 + 8 * 640
    assert list(_capped(states, 6400 + 4 * 640)) == ["s4", "s5", "s6", "s7"]
    assert _capped(states, 10**6) == states


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_chains_inlined_in_their_rows_read_the_same(kind):
    """One row per state: each chain below the shared prefix sits at the start of its row's own
    buffer (left-padded); logits match the forward, and a new state holds only the new tokens."""
    model = _tiny(kind)
    policy = TransformersPolicy(model, build_tokenizer())
    meter = policy.meter
    prompt = [5, 9, 14, 3, 7, 21, 8]
    root = policy._prefill(empty_state(prompt + [11]), meter, "policy").as_root()
    b = policy._prefill(RowState(root.cache, root.next_pos, (11, 40, 41, 42, 43)), meter, "policy")
    c = policy._prefill(RowState(root.cache, root.next_pos, (11, 44)), meter, "policy")
    fed = [prompt + [11, 40, 41, 42, 43], prompt + [11, 44]]
    batch = policy.step.new_batch([b, c], spare=1, inline=True)
    assert batch.groups_k is None and batch.start == 4 and batch.prefix is root.cache
    position = torch.tensor([[b.next_pos], [c.next_pos]])
    logits = policy.step(torch.tensor([[43], [44]]), position, batch)
    for turn in range(3):
        for row, ids in enumerate(fed):
            assert torch.allclose(logits[row], _reference_logits(model, ids), atol=1e-4), (turn, row)
        position = position + 1
        logits = policy.step(torch.tensor([[70 + turn], [80 + turn]]), position, batch)
        fed = [fed[0] + [70 + turn], fed[1] + [80 + turn]]
    batch.keep(compacted(2, {0}))
    child = batch.extract(0, int(position[1]) + 1, [90])
    assert child.cache.parent is c.cache and child.cache.length == 4 and child.length == len(fed[1])


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_rows_joining_a_running_batch_read_what_the_forward_reads(kind):
    """Rows join a batch some positions in (a subtree's next candidates, forked from a row of the
    same batch): the chain of the joining state below the prefix is copied to the end of their
    own positions so far, what lies before it is masked, and they go on with the others. Every
    row's logits match the model's forward on its full text; a state the joined rows leave holds
    only their own tokens, under the state they joined from; a state from elsewhere is refused."""
    model = _tiny(kind)
    policy = TransformersPolicy(model, build_tokenizer())
    step, meter = policy.step, policy.meter
    prompt = [5, 9, 14, 3, 7, 21, 8]
    root = policy._prefill(empty_state(prompt + [11]), meter, "policy").as_root()
    batch = step.new_batch([root], spare=2)
    step(torch.tensor([[11]]), torch.tensor([[root.next_pos]]), batch)
    batch = batch.select(torch.tensor([0, 0]))  # two rows from the prompt, as a call of N rows starts
    fed, position = [prompt + [11], prompt + [11]], root.next_pos + 1
    for tokens in ([30, 31], [32, 33], [34, 35]):
        logits = step(torch.tensor([[t] for t in tokens]), torch.tensor([[position]] * 2), batch)
        fed = [ids + [t] for ids, t in zip(fed, tokens)]
        position += 1
    parked = batch.extract(0, position, [40], since=None)  # row 0 ends: 11, 30, 32, 34 under the prompt
    assert parked.cache.parent is root.cache and parked.cache.length == 4 and batch.length == 4
    batch.keep(compacted(2, {0}))
    fed = [fed[1]]
    logits = step(torch.tensor([[36]]), torch.tensor([[position]]), batch)  # row 1 goes on alone
    fed[0].append(36)
    joined_at = batch.length
    batch.add_rows(parked.cache, 2)  # two rows from row 0's state, one position later
    batch.add_rows(root.cache, 1)  # and one from the prompt's own state: no own position to read
    assert batch.rows == 4 and batch.first_valid.tolist() == [0, 1, 1, 5]
    fed += [prompt + [11, 30, 32, 34], prompt + [11, 30, 32, 34], prompt]
    tokens, positions = [37, 40, 40, 11], [position + 1, position, position, root.next_pos]
    for turn in range(3):
        logits = step(torch.tensor([[t] for t in tokens]), torch.tensor([[p] for p in positions]), batch)
        fed = [ids + [t] for ids, t in zip(fed, tokens)]
        for row, ids in enumerate(fed):
            assert torch.allclose(logits[row], _reference_logits(model, ids), atol=1e-4), (turn, row)
        tokens = [50 + turn, 60 + turn, 70 + turn, 80 + turn]
        positions = [p + 1 for p in positions]
    child = batch.extract(2, positions[2], [tokens[2]], since=joined_at, parent=parked.cache)
    assert child.cache.parent is parked.cache and child.cache.length == 3  # 40 and two of its own
    assert child.length == len(fed[2]) and kept_bytes([child.cache]) == sum(s.nbytes for s in child.cache.chain())
    with pytest.raises(ValueError, match="descend"):
        batch.add_rows(policy._prefill(empty_state([5, 9, 2]), meter, "policy").cache, 1)
    grouped = step.new_batch([parked, root], spare=1)
    with pytest.raises(ValueError, match="groups"):
        grouped.add_rows(root.cache, 1)


def test_batches_stepped_together_read_their_own_caches():
    """Several calls' batches in one forward (as the decode loop steps several searches):
    prefixes of two lengths, two batches with groups of two widths, one inlined, one with
    nothing cached; rows leave one batch between turns. Every row's logits match the
    model's forward on its own text, and match each batch stepped alone."""
    model = _tiny("llama")
    policy = TransformersPolicy(model, build_tokenizer())
    step, meter = policy.step, policy.meter

    def prefilled(ids, parent=None):
        if parent is None:
            return policy._prefill(empty_state(ids), meter, "policy").as_root()
        return policy._prefill(RowState(parent.cache, parent.next_pos, tuple(ids)), meter, "policy")

    first = prefilled([5, 9, 14, 3, 7, 21, 8, 11])
    b1, b2 = prefilled([11, 30, 31, 32], first), prefilled([11, 33], first)
    second = prefilled([6, 2, 40, 41, 12])
    c1, c2 = prefilled([12, 50, 51], second), prefilled([12, 52, 53, 54, 55], second)
    # a row of `first` itself reads no group: its state is the prefix
    grouped = step.new_batch([b1, b2, first], spare=4).select(torch.tensor([0, 1, 0, 2, 1]))
    assert grouped.prefix is first.cache and grouped.groups_k is not None
    shorter = step.new_batch([second], spare=4).select(torch.tensor([0, 0, 0]))
    assert shorter.prefix is second.cache and shorter.groups_k is None
    inlined = step.new_batch([c1, c2], spare=4, inline=True)
    assert inlined.start > 0 and inlined.groups_k is None
    regrouped = step.new_batch([c1, c2], spare=4).select(torch.tensor([1, 0, 1]))
    assert regrouped.prefix is second.cache and regrouped.group_width != grouped.group_width
    bare = step.new_batch([empty_state([3])], spare=4)
    assert bare.prefix is None
    head, other = [5, 9, 14, 3, 7, 21, 8, 11], [6, 2, 40, 41, 12]
    text = {id(b1): head + [30, 31, 32], id(b2): head + [33], id(first): head, id(c1): other + [50, 51]}
    text.update({id(c2): other + [52, 53, 54, 55], id(second): other})
    texts = {
        "shorter": [other] * 3,
        "grouped": [text[id(s)] for s in (b1, b2, b1, first, b2)],
        "inlined": [text[id(c1)], text[id(c2)]],
        "regrouped": [text[id(c2)], text[id(c1)], text[id(c2)]],
        "bare": [[3]],
    }
    positions = {name: [len(t) - 1 for t in fed] for name, fed in texts.items()}
    batches = {"shorter": shorter, "grouped": grouped, "inlined": inlined, "regrouped": regrouped, "bare": bare}
    for turn in range(3):
        if turn == 2:  # two rows of the grouped batch end
            keep = compacted(5, {0, 3})
            grouped.keep(keep)
            texts["grouped"] = [texts["grouped"][i] for i in keep]
            positions["grouped"] = [positions["grouped"][i] for i in keep]
        alone = {}
        for name, batch in batches.items():  # the same step of each batch alone, on a copy
            copy = batch.select(torch.arange(batch.rows))
            ids = torch.tensor([[t[-1]] for t in texts[name]])
            alone[name] = step(ids, torch.tensor([[p] for p in positions[name]]), copy)
        outputs = step.forward(
            [
                (torch.tensor([[t[-1]] for t in texts[name]]), torch.tensor([[p] for p in positions[name]]), batch)
                for name, batch in batches.items()
            ]
        )
        for (name, fed), logits in zip(texts.items(), outputs):
            assert torch.allclose(logits, alone[name], atol=1e-5), (turn, name)
            for row, ids in enumerate(fed):
                assert torch.allclose(logits[row], _reference_logits(model, ids), atol=1e-4), (turn, name, row)
        for name, fed in texts.items():
            texts[name] = [ids + [60 + turn + row] for row, ids in enumerate(fed)]
            positions[name] = [p + 1 for p in positions[name]]


def test_the_steps_rotation_and_norm_are_transformers_own_arithmetic_to_the_bit():
    """The lean step samples the trees the transformers forward's arithmetic gives: its query/key
    rotation (a half swap times a sine with its first half negated) and its RMSNorm equal
    transformers' in bf16 bit for bit, not merely within a tolerance."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm, rotate_half

    from tts_explorer.policy.steppers import _halves_swapped, _signed_sin

    torch.manual_seed(0)
    qk = torch.randn(3, 6, 5, 64).to(torch.bfloat16)
    cos, sin = (torch.randn(3, 1, 5, 64).to(torch.bfloat16) for _ in range(2))
    assert torch.equal(qk * cos + _halves_swapped(qk) * _signed_sin(sin), qk * cos + rotate_half(qk) * sin)
    norm = LlamaRMSNorm(576, eps=1e-5).to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    # magnitudes spread over orders, as a model's hidden states are: where a norm computed another
    # way (a layer norm of [x, -x], say) rounds some values differently, as it did on the real model
    x = (torch.randn(64, 576) * torch.exp(torch.randn(64, 576) * 2)).to(torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(LlamaStep._norm(x, (norm.weight, norm.variance_epsilon)), norm(x))
