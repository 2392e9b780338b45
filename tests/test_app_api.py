"""The web app through gradio_client against a launched server: streaming, stop, import."""

import json
import time

import pytest
from gradio_client import Client, handle_file

from tts_explorer.scorers.base import StepPath
from tts_explorer.treefile import read_tree
from tts_explorer.ui.run_views import BASIC_FIELDS

pytestmark = pytest.mark.slow
QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have now?"


def run_args(model, strategy="beam", n=4, m=2, steps=3, question=QUESTION):
    return dict(
        question=question,
        reference="8",
        strategy=strategy,
        n=n,
        m=m,
        temperature=0.8,
        max_steps=steps,
        scorer="arithmetic",
        aggregation="last",
        selection="prm_vote",
        model=model,
    )


def call_run(client, **kwargs):
    return client.submit(*[kwargs[k] for k in BASIC_FIELDS], api_name="/run")


def wait(job, timeout=240):
    deadline = time.time() + timeout
    while not job.done():
        assert time.time() < deadline, "the run did not finish in time"
        time.sleep(0.2)
    return job.outputs()


def test_a_run_streams_updates_and_ends_with_a_tree(app_url, tiny_model_dir):
    client = Client(app_url, verbose=False)
    outputs = wait(call_run(client, **run_args(str(tiny_model_dir), n=8, m=2, steps=6)))
    assert len(outputs) >= 3  # loading, at least one live update, done
    figures = [json.loads(o[0]) for o in outputs if o[0]]
    sizes = [sum(len(t.get("customdata") or []) for t in f["data"]) for f in figures]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    final = outputs[-1]
    assert final[1].startswith("Done")
    tree = read_tree(open(final[-1]).read())  # the export file
    assert len(tree) == sizes[-1] and tree.meta["config"]["n"] == 8
    assert tree.meta["answer"] is None or tree.meta["answer"] in final[1]


def test_stop_cancels_a_running_search(app_url):
    client = Client(app_url, verbose=False)
    job = call_run(client, **run_args("embedded", n=8, m=2, steps=12))
    deadline = time.time() + 240
    while not any(o[1].startswith("Running") for o in job.outputs() if o and o[1]):
        assert time.time() < deadline and not job.done()
        time.sleep(0.2)
    stopped_at = time.time()
    assert client.predict(api_name="/stop") == "Stopping…"
    outputs = wait(job, timeout=60)
    assert time.time() - stopped_at < 15
    assert outputs[-1][1].startswith("Stopped")
    tree = read_tree(open(outputs[-1][-1]).read())
    assert tree.meta["stopped"] and 1 < len(tree)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"schema_version": 1, "question": "q", "nodes": [{"id": 3, "parent": 9, "depth": 1}]}', "cannot import"),
        ("[]", "must be a JSON object"),
    ],
)
def test_bad_uploads_are_refused(app_url, tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    client = Client(app_url, verbose=False)
    result = client.predict(handle_file(str(bad)), api_name="/import_tree")
    assert result[1].startswith("⚠") and message in result[1]


def test_bad_parameters_change_nothing(app_url, tiny_model_dir):
    client = Client(app_url, verbose=False)
    outputs = wait(call_run(client, **run_args(str(tiny_model_dir), n=6, m=4)))
    assert len(outputs) == 1 and "multiple of the beam width" in outputs[0][1]
    with pytest.raises(Exception, match="not in the list of choices"):  # no paths from the page
        call_run(client, **run_args("/etc/passwd")).result(timeout=60)


def test_rescoring_compares_before_and_after(app_url, tiny_model_dir):
    client = Client(app_url, verbose=False)
    final = wait(call_run(client, **run_args(str(tiny_model_dir), strategy="best_of_n", n=6, steps=2)))[-1]
    before = read_tree(open(final[-1]).read())
    rows, summary, fig = client.predict("confidence", "min", "prm_max", api_name="/rescore")
    assert "Chosen answer:" in summary and "finished candidates change rank" in summary
    assert sorted(r[0] for r in rows["data"]) == sorted(n.id for n in before.candidates())
    assert [r[5] for r in rows["data"]] == list(range(1, len(rows["data"]) + 1))  # ranks after, in order
    assert json.loads(fig)["data"]


def test_prm_lab_scores_a_sample(app_url):
    from tts_explorer.ui.prm_lab import example_file

    client = Client(app_url, verbose=False)
    status, index, fig, panel = client.predict(handle_file(example_file()), api_name="/lab_load")
    assert status == "Loaded 6 samples" and "gold label" in panel
    status, fig, panel = client.predict("arithmetic", 0.5, api_name="/lab_score")
    assert status.startswith("Scored sample 0") and "score 0.900" in panel
    names = [t["name"] for t in json.loads(fig)["data"]]
    assert "steps (colour = PRM score)" in names


def test_prm_lab_draws_the_reliability_of_a_scorer_over_the_file(app_url):
    from tts_explorer.diagnose import reliability
    from tts_explorer.processbench import read_samples, step_labels
    from tts_explorer.scorers import ScorerEnv, make_scorer
    from tts_explorer.ui.prm_lab import example_file

    client = Client(app_url, verbose=False)
    client.predict(handle_file(example_file()), api_name="/lab_load")
    status, fig = client.predict("arithmetic", api_name="/lab_reliability")
    samples, _ = read_samples(example_file())
    scores = make_scorer("arithmetic", ScorerEnv()).score_steps(
        [StepPath(s.problem, "", tuple(s.steps)) for s in samples]
    )
    expected = reliability([v for row in scores for v in row], [y for s in samples for y in step_labels(s)])
    assert f"ECE {expected['ece']:.3f}" in status and f"({expected['steps']} steps)" in status
    data = json.loads(fig)["data"]
    assert [t["name"] for t in data] == ["steps", "calibrated", "this scorer"]
    assert data[0]["y"] == [b["count"] for b in expected["bins"]]
