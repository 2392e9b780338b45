"""The page in a real headless browser (Debian's chromium, driven by Playwright).

Runs the default example on the embedded model, watches nodes appear while the search
runs, clicks a node and reads the side panel, and checks that HTML in a step is shown as
text. Screenshots go to artifacts/.
"""

import html
from pathlib import Path

import pytest

from tts_explorer.loopback import CHROMIUM_ARGS, chromium_path

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = chromium_path() or "/usr/bin/chromium"
ARGS = CHROMIUM_ARGS
NODE_COUNT = "Number((document.querySelector('.tts-tree') || {dataset: {}}).dataset.nodes || 0)"
POINT_OF_NODE = """(id) => {
  const gd = document.querySelector('.tts-tree');
  if (!gd || !gd._fullData) return null;
  for (const t of gd._fullData) {
    const i = (t.customdata || []).indexOf(id);
    if (i < 0 || t.name === 'clicked') continue;
    const box = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    return {x: box.left + xa._offset + xa.l2p(t.x[i]), y: box.top + ya._offset + ya.l2p(t.y[i]),
            hover: t.hovertext[i]};
  }
  return null;
}"""
STEP_IDS = (
    "(() => { const t = document.querySelector('.tts-tree')._fullData.find(t => t.name.startsWith('steps'));"
    " return t ? t.customdata : []; })()"
)


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(app_url)
        page.wait_for_selector("#run")
        yield page
        browser.close()


def click_node(page, node_id: int, tries: int = 1) -> str:
    """Click a drawn node and wait for its path panel; `tries` clicks in all where a busy
    machine may still be laying out a large figure when the first click lands."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        page.wait_for_function(f"({POINT_OF_NODE})({node_id}) !== null", timeout=30000)
        point = page.evaluate(POINT_OF_NODE, node_id)
        assert point, f"node {node_id} is not drawn"
        page.mouse.move(point["x"], point["y"])
        page.mouse.click(point["x"], point["y"])
        try:
            page.wait_for_selector(f"#path-panel[data-node='{node_id}']", timeout=15000)
            return point["hover"]
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise


def import_tree(page, path) -> None:
    """Open the page afresh (a new session) and import a tree file through the upload box."""
    page.reload()
    page.wait_for_selector("#import input[type=file]", state="attached")
    page.set_input_files("#import input[type=file]", str(path))


def test_default_example_grows_live_and_nodes_open_their_path(page):
    page.click("#run")
    page.wait_for_function(
        f"{NODE_COUNT} > 1 && document.querySelector('#status').innerText.includes('Running')", timeout=180000
    )
    live_nodes = page.evaluate(NODE_COUNT)
    page.screenshot(path=str(ARTIFACTS / "browser-running.png"))
    # a visitor zooms in while the search runs: the zoom survives the next updates
    page.evaluate("Plotly.relayout(document.querySelector('.tts-tree'), {'xaxis.range': [0, 2]})")
    page.wait_for_function(f"{NODE_COUNT} > {live_nodes}", timeout=300000)
    assert page.evaluate("document.querySelector('.tts-tree').layout.xaxis.range") == [0, 2]
    page.wait_for_function("document.querySelector('#status').innerText.startsWith('Done')", timeout=300000)
    page.evaluate("Plotly.relayout(document.querySelector('.tts-tree'), {'xaxis.autorange': true})")
    steps = page.evaluate(STEP_IDS)
    assert steps, "no scored steps drawn"
    target = max(steps)  # a deep node: its path has several steps
    hover = click_node(page, target)
    panel = page.inner_text("#path-panel")
    step_text = html.unescape(hover.split("<br>")[1]).rstrip("…").strip()  # line 2 of the hover: the step
    assert f"Path to node {target}" in panel
    assert " ".join(step_text.split()[:6]) in " ".join(panel.split())
    assert page.locator("#candidates table tbody tr").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "browser-done.png"), full_page=True)


def test_html_in_steps_is_shown_as_text(page, tmp_path):
    from tts_explorer.tree import SearchTree

    tree = SearchTree("What is <b>2+2</b>?", reference="4", meta={"config": {"max_steps": 2}})
    evil = tree.add(
        0,
        text="<script>window.__pwned = 1</script><img src=x onerror='window.__pwned=2'> 2 + 2 = 4",
        score=0.9,
        agg_score=0.9,
        status="finished",
        stop_reason="answer",
        answer="4",
    )
    quoted = tree.add(
        0,
        text='She said "four" & wrote 2 + 2 = 4 <i>twice</i>',
        score=0.2,
        agg_score=0.2,
        status="finished",
        stop_reason="answer",
        answer="<img src=x onerror='window.__pwned=3'>",
    )
    upload = tmp_path / "evil-tree.json"
    upload.write_text(tree.to_json())
    import_tree(page, upload)
    page.wait_for_function("document.querySelector('#status').innerText.startsWith('Imported')", timeout=30000)
    click_node(page, evil.id)
    panel = page.inner_text("#path-panel")
    assert "<script>window.__pwned = 1</script>" in panel and "What is <b>2+2</b>?" in panel
    # the answers, in the candidates table and the status line, are text too
    assert "<img src=x onerror='window.__pwned=3'>" in page.inner_text("#candidates")
    assert page.locator("#candidates img, #status img, #path-panel script, #path-panel img").count() == 0
    # the hover label shows quotes, ampersands and tags as written: escaped exactly once
    point = page.evaluate(POINT_OF_NODE, quoted.id)
    page.mouse.move(0, 0)
    page.mouse.move(point["x"], point["y"])
    page.wait_for_function(
        f"(document.querySelector('.hoverlayer .hovertext') || {{}}).textContent?.startsWith('node {quoted.id} ')",
        timeout=10000,
    )
    hover = page.evaluate("document.querySelector('.hoverlayer .hovertext').textContent")
    assert 'She said "four" & wrote 2 + 2 = 4 <i>twice</i>' in hover and "&quot;" not in hover
    # re-scoring's summary puts the answers in Markdown: still text
    page.click("text=Re-score this tree")
    page.click("#rescore")
    page.wait_for_function(
        "document.querySelector('#rescore-summary').innerText.includes('Chosen answer')", timeout=30000
    )
    assert page.locator("#rescore-summary img").count() == 0
    assert page.evaluate("window.__pwned === undefined")
    page.screenshot(path=str(ARTIFACTS / "browser-escaped.png"))


def test_a_large_tree_draws(page, tmp_path):
    from tts_explorer.synthetic import synthetic_tree

    upload = tmp_path / "large-tree.json"
    upload.write_text(synthetic_tree(2000).to_json())
    import_tree(page, upload)
    page.wait_for_function(f"{NODE_COUNT} == 2000", timeout=60000)
    # the page still answers: a click on a node opens its path
    click_node(page, 1999, tries=3)
    assert "Path to node 1999" in page.inner_text("#path-panel")


def test_render_benchmark_draws_every_node(page):
    from tts_explorer.benchmark.render_speed import format_render, render_timings

    timings = render_timings([300], page.context.browser)
    assert [t.nodes for t in timings] == [300]
    assert timings[0].first_draw_ms > 0 and timings[0].redraw_ms > 0 and timings[0].figure_ms > 0
    assert "first draw ms" in format_render(timings)


def test_an_edited_step_is_drawn_and_clickable(page, tmp_path):
    from tts_explorer.tree import SearchTree

    tree = SearchTree(
        "Sam has 4 boxes with 6 pens in each box. How many pens?",
        reference="24",
        meta={"config": {"max_steps": 3}, "scorer": "arithmetic"},
    )
    first = tree.add(0, text="Sam has 4 * 6 = 24 pens.", score=0.9, agg_score=0.9)
    tree.add(
        first.id,
        text="The answer is 24.",
        score=0.8,
        agg_score=0.8,
        stop_reason="answer",
        answer="24",
        status="finished",
    )
    upload = tmp_path / "to-edit.json"
    upload.write_text(tree.to_json())
    import_tree(page, upload)
    page.wait_for_function("document.querySelector('#status').innerText.startsWith('Imported')", timeout=30000)
    click_node(page, first.id)
    page.wait_for_function("document.querySelector('#edit-text textarea').value.includes('4 * 6 = 24')", timeout=10000)
    page.fill("#edit-text textarea", "Sam has 4 * 6 = 25 pens.")
    page.click("#edit-step")
    page.wait_for_function("document.querySelector('#status').innerText.startsWith('Node 3 added')", timeout=60000)
    assert "0.050" in page.inner_text("#edit-table")  # the wrong product, scored low beside the original 0.900
    ringed = (
        "(() => { const t = document.querySelector('.tts-tree')._fullData.find("
        "t => t.name === 'written by a visitor'); return t ? t.customdata : []; })()"
    )
    page.wait_for_function(f"{ringed}.includes(3)", timeout=15000)
    hover = click_node(page, 3)
    assert "written by a visitor" in hover
    assert "Sam has 4 * 6 = 25 pens." in page.inner_text("#path-panel")
    page.screenshot(path=str(ARTIFACTS / "browser-edit.png"), full_page=True)
