"""The Scaling tab through the page's API: a visitor's results file, checked row by row."""

import json

import pytest
from gradio_client import Client, handle_file

pytestmark = pytest.mark.slow


def row(**overrides):
    base = {
        "id": "1",
        "model": "m",
        "n_params": 100,
        "strategy": "beam",
        "n": 4,
        "scorer": "arithmetic",
        "correct": True,
        "covered": True,
        "compute": {"total_flops": 1e9, "generated_tokens": 10, "scorer_tokens": 0},
        "bin": "easy",
        "pass1": 0.75,
    }
    return json.dumps({**base, **overrides})


def test_a_results_file_is_checked_and_drawn(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    good = tmp_path / "results.jsonl"
    good.write_text(
        "\n".join(
            [
                row(),
                row(id="2", correct=False, bin="hard", pass1=0.0),
                row(n=16),
                row(model="<img src=x onerror=alert(1)>", n_params=200, strategy="greedy", n=1),
                row(n=float("nan")).replace("NaN", "NaN"),
                '{"broken',
                row(correct="yes"),
            ]
        )
    )
    note, fig0, fig1, fig2, table, optimal = client.predict(handle_file(str(good)), api_name="/scaling_load")
    assert note.startswith("4 result rows from results.jsonl; skipped 3 bad rows")
    names = [t["name"] for t in json.loads(fig0)["data"]]
    assert "beam (arithmetic)" in names and not any("<img" in n for n in names)
    assert any("&lt;img" in n for n in names)  # the larger model's reference line, escaped once
    assert ["m", "beam (arithmetic)", 4, "all", 2, "50.0%"] in [c[:6] for c in table["data"]]
    assert any(r[0] == "easy" and r[2] == "beam" for r in optimal["data"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "no usable result rows"),
        ("[1, 2]\n" * 5, "no usable result rows"),
        ("[" * 100_000, "no usable result rows"),
    ],
)
def test_hostile_results_files_get_one_line(app_url, tmp_path, content, message):
    client = Client(app_url, verbose=False)
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    note, *_ = client.predict(handle_file(str(path)), api_name="/scaling_load")
    assert note.startswith("⚠") and message in note and "\n" not in note


def test_the_shipped_results_are_set_b_whole_cells(app_url):
    from tts_explorer.strategies import is_choosable

    client = Client(app_url, verbose=False)
    note, fig0, fig1, fig2, table, optimal = client.predict(api_name="/scaling_shipped")
    assert "held-out set B" in note
    cells = table["data"]
    assert {"particles (smollm-probe)", "rebase (smollm-probe)", "deepconf", "greedy"} <= {c[1] for c in cells}
    assert {c[4] for c in cells if c[3] == "all"} == {100}  # a cell stopped part-way is left out
    assert {4, 16, 64} <= {c[2] for c in cells}
    assert any(c[0].startswith("Gemma") for c in cells)  # the larger model: the reference lines
    assert optimal["data"] and all(is_choosable(r[2]) for r in optimal["data"])
