"""How long a big tree takes to draw: the figure built in Python, then drawn by plotly.js
in headless Chromium exactly as the page does it (JSON.parse + Plotly.react, until the
next frame is painted). Needs Playwright and a Chromium (the dev install has both).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..loopback import CHROMIUM_ARGS, chromium_path
from ..render import PLOTLY_JS, figure
from ..synthetic import synthetic_tree
from ..ui.tree_view import as_value

PAGE = """<!doctype html><html><head><meta charset="utf-8"><script src="plotly.min.js"></script></head>
<body><div id="tree" style="width:1400px;height:800px"></div></body></html>"""

DRAW = """async (value) => {
  const box = document.getElementById('tree');
  const t0 = performance.now();
  const fig = JSON.parse(value);
  await Plotly.react(box, fig.data, fig.layout, {responsive: true, scrollZoom: true, displaylogo: false});
  await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  const ms = performance.now() - t0;
  const drawn = box._fullData.reduce((n, t) => n + (t.customdata ? t.customdata.length : 0), 0);
  return {ms, drawn};
}"""


def _draw(page, value: str, nodes: int) -> float:
    result = page.evaluate(DRAW, value)
    if result["drawn"] != nodes:
        raise RuntimeError(f"the browser drew {result['drawn']} nodes of {nodes}")
    return result["ms"]


@dataclass
class RenderTiming:
    nodes: int
    figure_ms: float  # Python: layout + traces
    json_kib: float
    first_draw_ms: float  # browser: first Plotly.react into an empty element
    redraw_ms: float  # browser: Plotly.react to the tree grown by one step of 16 nodes (a streamed update)


def render_timings(sizes: list[int], browser=None) -> list[RenderTiming]:
    """Timings per tree size, in `browser` (a Playwright browser) or a headless Chromium started here."""
    if browser is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            own = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            try:
                return render_timings(sizes, own)
            finally:
                own.close()
    out = []
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "index.html").write_text(PAGE)
        shutil.copy(PLOTLY_JS, Path(folder, "plotly.min.js"))
        for size in sizes:
            tree = synthetic_tree(size)
            started = time.perf_counter()
            value = as_value(figure(tree))
            figure_ms = 1000 * (time.perf_counter() - started)
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.goto(Path(folder, "index.html").as_uri())
            page.wait_for_function("window.Plotly !== undefined")
            first = _draw(page, value, len(tree))
            grown = synthetic_tree(size + 16)
            redraw = _draw(page, as_value(figure(grown)), len(grown))
            page.close()
            out.append(RenderTiming(len(tree), figure_ms, len(value) / 1024, first, redraw))
    return out


def format_render(timings: list[RenderTiming]) -> str:
    head = f"{'nodes':>6}{'figure ms':>11}{'JSON KiB':>10}{'first draw ms':>15}{'redraw ms':>11}"
    lines = [head, "-" * len(head)]
    for t in timings:
        lines.append(f"{t.nodes:>6}{t.figure_ms:>11.0f}{t.json_kib:>10.0f}{t.first_draw_ms:>15.0f}{t.redraw_ms:>11.0f}")
    return "\n".join(lines)
