"""The compute-optimal side: difficulty, intervals, the resumable grid with reused samples,
the compute-optimal table, auto, plots, and a small model against a larger one."""

import json

import pytest
from fakes import FakePolicy, HashScorer

from tts_explorer.config import SearchConfig
from tts_explorer.data import Problem
from tts_explorer.scaling.grid import Grid, first_chains, read_grid, read_rows, run_grid
from tts_explorer.scaling.stats import cells, complete, compute_optimal, difficulty_bin, wilson
from tts_explorer.scorers import SCORERS
from tts_explorer.search import new_tree, run_to_end
from tts_explorer.selection import apply_selection

PROBLEMS = [Problem(str(i), f"Question {i}: how many?", str(7 + i % 3)) for i in range(6)]


@pytest.fixture(autouse=True)
def hash_scorer(monkeypatch):
    monkeypatch.setitem(SCORERS, "hash", HashScorer)


def test_wilson_intervals_and_absolute_bins():
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert [difficulty_bin(p) for p in (1.0, 0.5, 0.49, 0.1, 0.099, 0.0, None)] == [
        "easy",
        "easy",
        "medium",
        "medium",
        "hard",
        "hard",
        None,
    ]


def grid(**kw) -> Grid:
    base = SearchConfig(strategy="majority", n=1, beam_width=2, max_steps=4, seed=0)
    return Grid(
        kw.pop("strategies", ["greedy", "majority", "best_of_n", "beam"]),
        kw.pop("budgets", [1, 4, 8]),
        ["hash"],
        base,
        **kw,
    )


class CountingPolicy(FakePolicy):
    name = "fake-small"


def test_the_grid_reuses_chains_and_resumes(tmp_path):
    out = tmp_path / "results.jsonl"
    policy = CountingPolicy(answer_prob=0.35, seed=3)
    g = grid(difficulty_samples=4)
    rows = run_grid(["fake"], PROBLEMS, g, str(out), lambda m: policy, progress=False)
    assert len(rows) == len(PROBLEMS) * len(g.cells())
    assert {(r["strategy"], r["n"]) for r in rows} == {
        ("greedy", 1),
        ("majority", 1),
        ("majority", 4),
        ("majority", 8),
        ("best_of_n", 1),
        ("best_of_n", 4),
        ("best_of_n", 8),
        ("beam", 1),
        ("beam", 4),
        ("beam", 8),
    }
    assert all(r["bin"] == difficulty_bin(r["pass1"]) and r["difficulty_samples"] == 4 for r in rows)
    majority = {r["id"]: r for r in rows if r["strategy"] == "majority" and r["n"] == 8}
    smaller = {r["id"]: r for r in rows if r["strategy"] == "majority" and r["n"] == 1}
    for key in majority:  # a subsample carries its own chains' compute
        assert 0 < smaller[key]["compute"]["generated_tokens"] < majority[key]["compute"]["generated_tokens"]
        assert majority[key]["covered"] >= smaller[key]["covered"]
    calls = len(policy.calls)
    again = run_grid(["fake"], PROBLEMS, g, str(out), lambda m: policy, progress=False)
    assert len(again) == len(rows) and len(policy.calls) == calls  # nothing made twice
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:20])  # an interrupted run: a cut last line
    resumed = run_grid(["fake"], PROBLEMS, g, str(out), lambda m: policy, progress=False)
    assert len(read_rows(out)) == len(rows) and len(resumed) == len(rows)


def test_problems_searched_at_once_share_the_engine_and_give_the_same_rows(tmp_path, tiny_policy):
    g = Grid(["majority", "best_of_n", "beam"], [4], ["arithmetic"], SearchConfig(beam_width=2, max_steps=3, seed=0))
    alone = run_grid(["tiny"], PROBLEMS[:4], g, str(tmp_path / "a.jsonl"), lambda m: tiny_policy, progress=False)
    turns = tiny_policy.batched_calls
    together = run_grid(
        ["tiny"], PROBLEMS[:4], g, str(tmp_path / "b.jsonl"), lambda m: tiny_policy, progress=False, parallel=3
    )
    assert tiny_policy.batched_calls > turns  # the problems' searches ran in the same decode-loop turns

    def key(row):
        return row["id"], row["strategy"]

    # each search draws its own seeded stream: the same samples alone or beside others
    assert sorted((key(r), r["answer"], r["compute"]["generated_tokens"]) for r in together) == sorted(
        (key(r), r["answer"], r["compute"]["generated_tokens"]) for r in alone
    )
    assert len(read_rows(tmp_path / "b.jsonl")) == len(alone) == 4 * len(g.cells())


def test_a_failing_problem_stops_a_parallel_eval_after_the_rows_before_it(tmp_path, tiny_policy, monkeypatch):
    import tts_explorer.scaling.grid as grid_module

    real = grid_module.problem_rows

    def failing(problem, *args):
        if problem.id == "2":
            raise RuntimeError("this problem fails")
        yield from real(problem, *args)

    monkeypatch.setattr(grid_module, "problem_rows", failing)
    g = Grid(["majority"], [2], ["-"], SearchConfig(max_steps=2, seed=0))
    out = tmp_path / "r.jsonl"
    with pytest.raises(RuntimeError, match="this problem fails"):
        run_grid(["tiny"], PROBLEMS[:4], g, str(out), lambda m: tiny_policy, progress=False, parallel=2)
    assert {r["id"] for r in read_rows(out)} <= {"0", "1", "3"}  # what was made is kept; resuming makes the rest
    monkeypatch.undo()
    rows = run_grid(["tiny"], PROBLEMS[:4], g, str(out), lambda m: tiny_policy, progress=False, parallel=2)
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in read_rows(out)) == ["0", "1", "2", "3"]


def test_results_of_several_evals_are_binned_by_any_of_their_estimates(tmp_path):
    policy = CountingPolicy(answer_prob=0.35, seed=3)
    estimated, plain = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_grid(
        ["fake"],
        PROBLEMS,
        grid(strategies=["majority"], budgets=[4], difficulty_samples=4),
        str(estimated),
        lambda m: policy,
        progress=False,
    )
    run_grid(
        ["fake"], PROBLEMS[:4], grid(strategies=["beam"], budgets=[2]), str(plain), lambda m: policy, progress=False
    )
    assert all(r["bin"] is None for r in read_rows(plain))
    assert not (tmp_path / "b.jsonl.difficulty.jsonl").exists()  # no estimates asked: no side file
    bins = {r["id"]: (r["bin"], r["pass1"]) for r in read_rows(estimated)}
    rows = read_grid([plain, estimated])
    assert len(rows) == 4 + len(PROBLEMS)
    assert all((r["bin"], r["pass1"]) == bins[r["id"]] and r["difficulty_samples"] == 4 for r in rows)
    assert compute_optimal(rows)["bins"].keys() == {b for b, _ in bins.values()}
    assert all(r["bin"] is None for r in read_grid([plain]))  # no estimate anywhere: left unbinned


def test_a_subsample_votes_over_its_own_chains():
    config = SearchConfig(strategy="majority", n=8, max_steps=4, seed=1)
    tree = new_tree("q", config, "-", "7")
    run_to_end(tree, FakePolicy(answer_prob=0.4, seed=1), config, "-")
    sub = first_chains(tree, 3)
    assert sub.root.children == tree.root.children[:3]
    assert {n.id for n in sub if n.id} == {n.id for c in tree.root.children[:3] for n in tree.path(_leaf(tree, c))}
    answer, _ = apply_selection(sub, "majority")
    answers = [n.answer for n in sub.candidates() if n.answer]
    assert answer is None or answers.count(answer) == max(answers.count(a) for a in answers)


def _leaf(tree, node_id):
    while tree.nodes[node_id].children:
        node_id = tree.nodes[node_id].children[0]
    return node_id


def test_the_compute_optimal_table_and_auto(tmp_path):
    rows = [
        {
            "model": "m",
            "id": "a",
            "strategy": "beam",
            "n": 4,
            "scorer": "hash",
            "correct": True,
            "bin": "hard",
            "compute": {"total_flops": 10.0, "generated_tokens": 1, "scorer_tokens": 0},
            "aggregation": "min",
            "selection": "prm_max",
        },
        {
            "model": "m",
            "id": "a",
            "strategy": "dvts",
            "n": 4,
            "scorer": "hash",
            "correct": False,
            "bin": "hard",
            "compute": {"total_flops": 5.0, "generated_tokens": 1, "scorer_tokens": 0},
            "aggregation": "min",
            "selection": "prm_vote",
        },
        {
            "model": "m",
            "id": "b",
            "strategy": "dvts",
            "n": 4,
            "scorer": "hash",
            "correct": True,
            "bin": "easy",
            "compute": {"total_flops": 5.0, "generated_tokens": 1, "scorer_tokens": 0},
            "aggregation": "last",
            "selection": "prm_vote",
        },
    ]
    rows.append({**rows[0], "id": "b", "correct": False, "bin": "easy"})
    # right on "a", but auto cannot run greedy, and best-of-N stopped after one of the two problems
    rows += [
        {**rows[0], "strategy": s, "compute": {**rows[0]["compute"], "total_flops": 1.0}}
        for s in ("greedy", "best_of_n")
    ]
    rows.append({**rows[-2], "id": "b", "bin": "easy"})
    table = compute_optimal(rows)
    assert table["bins"]["hard"]["4"]["strategy"] == "beam" and table["bins"]["easy"]["4"]["strategy"] == "dvts"
    assert [r["strategy"] for r in complete(rows)].count("best_of_n") == 0
    path = tmp_path / "table.json"
    path.write_text(json.dumps(table))
    config = SearchConfig(strategy="auto", n=16, beam_width=4, max_steps=4)
    for answers, expected_bin in ((tuple(str(i) for i in range(1000)), "hard"), (("7",), "easy")):
        tree = new_tree("q", config, "hash", "7")  # four answers that all differ, or all agree
        run_to_end(tree, FakePolicy(answer_prob=1.0, answers=answers), config, "hash", auto_table=str(path))
        auto = tree.meta["auto"]
        assert auto["bin"] == expected_bin and auto["probe_samples"] == 4 and auto["n"] == 12
        assert auto["estimated_pass1"] == {"hard": 0.0, "easy": 1.0}[expected_bin]
        assert auto["chosen"] == {"hard": "beam", "easy": "dvts"}[expected_bin]
        assert "was best in the table" in auto["reason"]
        assert len(tree.candidates()) <= 16  # the probes count toward the budget
    assert tree.meta["selection"] == "prm_vote"  # the table's selection


def test_auto_spends_nothing_on_the_difficulty_where_every_measured_bin_agrees(tmp_path):
    def entry(strategy, problems):
        return {
            "strategy": strategy,
            "aggregation": "min",
            "selection": "prm_vote",
            "accuracy": 0.5,
            "problems": problems,
        }

    table = {
        "bins": {"hard": {"8": entry("beam", 40)}, "medium": {"8": entry("beam", 12)}, "easy": {"8": entry("dvts", 3)}}
    }
    path = tmp_path / "table.json"
    path.write_text(json.dumps(table))
    config = SearchConfig(strategy="auto", n=8, beam_width=2, max_steps=4)
    tree = new_tree("q", config, "hash", "7")
    run_to_end(tree, FakePolicy(answer_prob=1.0, seed=2), config, "hash", auto_table=str(path))
    auto = tree.meta["auto"]  # the easy bin rests on 3 problems: it does not count
    assert auto["probe_samples"] == 0 and auto["n"] == 8 and auto["chosen"] == "beam" and auto["bin"] is None
    assert "no samples spent on estimating the difficulty" in auto["reason"]
    assert len(tree.root.children) == 8  # beam search's first step, N candidates, and no probe chains

    table["bins"]["medium"]["8"] = entry("dvts", 12)  # two measured bins disagree: the difficulty is estimated
    path.write_text(json.dumps(table))
    tree = new_tree("q", config, "hash", "7")
    run_to_end(tree, FakePolicy(answer_prob=1.0, seed=2), config, "hash", auto_table=str(path))
    assert tree.meta["auto"]["probe_samples"] == 2 and tree.meta["auto"]["n"] == 6


def test_the_difficulty_estimate_of_auto():
    from tts_explorer.strategies.auto import estimate_pass1

    bins = {
        answers: difficulty_bin(estimate_pass1(list(answers), 4)[0])
        for answers in (("1", "2", "3", "4"), ("1", "1", "2", None), ("1", "1", "1", "2"), ("5",) * 4, (None,) * 4)
    }
    assert bins == {
        ("1", "2", "3", "4"): "hard",
        ("1", "1", "2", None): "medium",
        ("1", "1", "1", "2"): "easy",
        ("5",) * 4: "easy",
        (None,) * 4: "hard",
    }
    assert estimate_pass1(["7"], 1) == (1.0, 1) and estimate_pass1([None], 1) == (0.0, 0)


@pytest.mark.slow
def test_a_small_model_against_a_larger_one_and_the_plot(tmp_path):
    import subprocess
    import sys

    from tiny_models import build_llama

    small, large = build_llama(tmp_path / "small", hidden=64), build_llama(tmp_path / "large", hidden=128, seed=1)
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"question": f"What is {i} + {i}?", "answer": str(2 * i)}) for i in range(3)))
    out = tmp_path / "results.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tts_explorer",
            "eval",
            "--data",
            str(data),
            "--models",
            f"{small},{large}",
            "--strategies",
            "greedy,majority,best_of_n",
            "--budgets",
            "1,4",
            "--difficulty-samples",
            "4",
            "--max-steps",
            "2",
            "--step-tokens",
            "6",
            "--final-tokens",
            "6",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_rows(out)
    assert {r["model"] for r in rows} == {small.name, large.name}
    assert max(r["n_params"] for r in rows if r["model"] == small.name) < min(
        r["n_params"] for r in rows if r["model"] == large.name
    )
    assert f"{small.name} matches {large.name} greedy N=1" in done.stdout
    assert "FLOPs: 2 x parameters x tokens, policy and scorer both counted" in done.stdout
    assert "eval" in done.stderr and "it/s" in done.stderr or "s/it" in done.stderr  # a progress bar with its rate
    html_out, table = tmp_path / "fig.html", tmp_path / "table.json"
    done = subprocess.run(
        [sys.executable, "-m", "tts_explorer", "plot", str(out), "--out", str(html_out), "--table", str(table)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    page = html_out.read_text()
    assert "Plotly.newPlot('fig0'" in page and "<script src=" not in page and len(page) > 1_000_000  # plotly inside
    assert f"with search against {large.name}" in page
    assert json.loads(table.read_text())["model"] == small.name
    assert all(c.problems == 3 for c in cells(rows) if c.bin == "all")
