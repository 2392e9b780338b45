"""The command line, run as a user runs it: error paths, and solve / eval on a tiny model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "tts_explorer", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["solve", ""], "the problem is empty"),
        (["solve", "x" * 5000], "cap is 4000"),
        (["solve", "q", "--strategy", "beam", "--n", "6", "--beam-width", "4"], "must be a multiple"),
        (["solve", "q", "--strategy", "dvts", "--n", "4", "--beam-width", "8"], "larger than N"),
        (["solve", "q", "--n", "1000"], "above the cap"),
        (["solve", "q", "--step-tokens", "5000"], "capped"),
        (["solve", "q", "--strategy", "astar"], "valid: greedy, majority, best_of_n, beam, dvts"),
        (["solve", "q", "--scorer", "oracle"], "arithmetic, confidence, judge"),
        (["solve", "q", "--aggregation", "max"], "valid: last, min, avg, prod"),
        (["solve", "q", "--model", "/no/such/model.gguf"], "cannot read the GGUF"),
        (["solve", "q", "--model", "/tmp"], "not a model directory"),
        (["eval", "--data", "/no/such.jsonl"], "cannot read data file"),
        (["eval", "--data", "gsm8k_test_dev"], "shipped sets: easy, harder"),
        (["eval", "--data", "assets/problems/easy.jsonl", "--budgets", "4,x"], "comma-separated integers"),
        (["eval", "--data", "assets/problems/easy.jsonl", "--parallel", "0"], "--parallel must be between 1 and 64"),
        (["eval", "--data", "assets/problems/easy.jsonl", "--parallel", "9" * 20], "must be between 1 and 64"),
        (["eval", "--data", "assets/problems/easy.jsonl", "--parallel", "9" * 8000], "invalid int value"),
        (["eval", "--data", "assets/problems/easy.jsonl", "--parallel", "nan"], "invalid int value"),
        (["train-prm", "--parallel", "0"], "--parallel must be between 1 and 64"),
        (["train-prm", "--parallel", "9" * 20], "must be between 1 and 64"),
        (["train-prm", "--parallel", "9" * 8000], "invalid int value"),
        (["train-prm", "--parallel", "nan"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_solve_prints_the_tree_and_writes_json(tiny_model_dir, tmp_path):
    out = tmp_path / "tree.json"
    done = cli(
        "solve",
        "Tom has 3 apples and buys 5 more.",
        "--model",
        str(tiny_model_dir),
        "--strategy",
        "beam",
        "--n",
        "4",
        "--beam-width",
        "2",
        "--max-steps",
        "3",
        "--step-tokens",
        "8",
        "--final-tokens",
        "8",
        "--answer",
        "8",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "answer:" in done.stdout and "compute: generated" in done.stdout
    tree = json.loads(out.read_text())
    assert tree["reference"] == "8" and len(tree["nodes"]) > 4


def test_eval_skips_bad_rows(tiny_model_dir, tmp_path):
    data = tmp_path / "mixed.jsonl"
    data.write_text(
        "\n".join(
            [
                json.dumps({"question": "What is 2 + 2?", "answer": "Two and two.\n#### 4"}),
                "{broken json",
                json.dumps({"problem": "What is 3 * 3?", "answer": "9"}),
                json.dumps({"question": 5}),
            ]
        )
    )
    out = tmp_path / "results.jsonl"
    done = cli(
        "eval",
        "--data",
        str(data),
        "--strategies",
        "greedy,beam",
        "--budgets",
        "2,4",
        "--model",
        str(tiny_model_dir),
        "--beam-width",
        "2",
        "--max-steps",
        "2",
        "--step-tokens",
        "6",
        "--final-tokens",
        "6",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "mixed.jsonl:2: not valid JSON" in done.stderr and "mixed.jsonl:4: needs" in done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 * 3  # 2 problems x (greedy once + beam at N=2 and N=4)
    assert {r["reference"] for r in rows} == {"4", "9"}
    assert all(r["compute"]["generated_tokens"] > 0 for r in rows)
    assert "greedy" in done.stdout and "accuracy [95% CI]" in done.stdout and "coverage" in done.stdout


def test_solve_with_a_learned_prm(tmp_path, tiny_model_dir):
    from tiny_prms import SCORE_AT_TAG, build_prm

    prm = build_prm(tmp_path / "prm", "qwen-prm")
    out = tmp_path / "tree.json"
    done = cli(
        "solve",
        "What is 2 + 3?",
        "--model",
        str(tiny_model_dir),
        "--strategy",
        "beam",
        "--n",
        "4",
        "--beam-width",
        "2",
        "--max-steps",
        "2",
        "--step-tokens",
        "6",
        "--final-tokens",
        "6",
        "--scorer",
        "qwen-prm",
        "--scorer-model",
        str(prm),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    nodes = json.loads(out.read_text())["nodes"][1:]
    assert nodes and all(abs(n["score"] - SCORE_AT_TAG) < 1e-3 for n in nodes)
    bad = cli(
        "solve", "What is 2 + 3?", "--model", str(tiny_model_dir), "--scorer", "arithmetic", "--scorer-model", str(prm)
    )
    assert bad.returncode == 2 and "does not take these options" in bad.stderr


def test_prm_data_and_prm_eval(tmp_path):
    dev, test = tmp_path / "dev.jsonl", tmp_path / "test.jsonl"
    assert cli("prm-data", "--limit", "40", "--out", str(dev)).returncode == 0
    assert cli("prm-data", "--offset", "40", "--limit", "40", "--seed", "1", "--out", str(test)).returncode == 0
    done = cli("prm-eval", "--data", str(test), "--tune-data", str(dev), "--scorer", "arithmetic")
    assert done.returncode == 0, done.stderr
    assert "threshold tuned on" in done.stdout and "F1" in done.stdout and "length bias" in done.stdout
    bad = cli("prm-eval", "--data", str(tmp_path / "missing.jsonl"))
    assert bad.returncode == 2 and "cannot read data file" in bad.stderr


def test_bench_prints_engine_and_naive_rows(tiny_model_dir):
    done = cli(
        "bench",
        "--model",
        str(tiny_model_dir),
        "--limit",
        "1",
        "--strategies",
        "beam,best_of_n",
        "--budgets",
        "4",
        "--beam-width",
        "2",
        "--max-steps",
        "2",
        "--scorers",
        "arithmetic,confidence",
        "--no-render",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    engine = [line for line in lines if line.split()[2:3] == ["engine"]]
    naive = [line for line in lines if line.split()[2:3] == ["naive"]]
    assert len(engine) == 2 and len(naive) == 2 and all(line.rstrip().endswith("x") for line in engine)
    assert "prefill ratio" in done.stdout and "peak resident memory" in done.stdout
    assert "llama.cpp: skipped (the model is not a GGUF file)" in done.stdout
    # the engine computes each token about once; the naive way re-encodes the path for every candidate
    ratio = lambda line: float(line.split()[6])  # noqa: E731
    assert all(ratio(e) < 1.3 for e in engine) and all(ratio(n) > ratio(e) for n, e in zip(naive, engine))
