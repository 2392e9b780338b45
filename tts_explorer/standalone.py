"""Self-contained HTML pages: plotly.js inside, no server, no internet. The shareable tree
(the Search tab's "Download as HTML") and the frame the scaling report uses.

Text from visitors and models goes into the page twice, both safely: escaped once in the
HTML, and as JSON data inside a script (<, > and & as unicode escapes, so nothing can close the
script element), from which the page's own code writes it with textContent only.
"""

from __future__ import annotations

import html

from .render import DEFAULT_COLOURS, PLOTLY_JS, Colours, figure, to_json
from .tree import SearchTree

STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:0 1em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px}#path li{margin-bottom:.5em;white-space:pre-wrap}"
    ".meta{color:#666;font-size:.85em}"
)


def script_json(value) -> str:
    """JSON safe inside a <script> element: no <, > or & in it at all (as unicode escapes, the
    same strings to JavaScript), so no text can close the element or start an HTML comment."""
    return to_json(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(title: str, body: str, script: str = "") -> str:
    """A whole HTML document with plotly.js inlined; `body` must already be escaped."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<script>{PLOTLY_JS.read_text(encoding='utf-8')}</script><style>{STYLE}</style></head>"
        f"<body>{body}<script>{script}</script></body></html>"
    )


SHOW_PATH = """
const fig = %(figure)s, nodes = %(nodes)s;
const box = document.getElementById('tree');
Plotly.newPlot(box, fig.data, fig.layout, {responsive: true, scrollZoom: true, displaylogo: false});
function fmt(v) { return v === null || v === undefined ? '–' : Number(v).toFixed(3); }
function show(id) {
  const panel = document.getElementById('path');
  panel.replaceChildren();
  const head = document.createElement('h3');
  head.textContent = id === 0 ? 'The problem' : 'Path to node ' + id;
  panel.appendChild(head);
  const chain = [];
  for (let n = nodes[id]; n && n.id !== 0; n = nodes[n.parent]) chain.unshift(n);
  const list = document.createElement('ol');
  for (const n of chain) {
    const item = document.createElement('li');
    item.dataset.node = n.id;
    item.textContent = n.text;
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = 'step score ' + fmt(n.score) + ' · path score ' + fmt(n.agg) + ' · ' + n.status +
      (n.edited ? ' · written by a visitor' : '') + (n.answer !== null ? ' · answer ' + n.answer : '');
    item.appendChild(meta);
    list.appendChild(item);
  }
  panel.appendChild(list);
  panel.dataset.node = id;
}
box.on('plotly_click', ev => {
  const p = ev.points && ev.points[0];
  if (p && p.customdata !== undefined) show(p.customdata);
});
"""


def tree_page(tree: SearchTree, colours: Colours = DEFAULT_COLOURS) -> str:
    """The tree as one HTML file: zoom, hover and click a node to read its path; the problem,
    settings, answer and compute beside it."""
    config = tree.meta.get("config") or {}
    compute = tree.meta.get("compute") or {}
    answer = tree.meta.get("answer")
    verdict = {True: " (right)", False: " (wrong)"}.get(tree.meta.get("correct"), "")
    settings = ", ".join(f"{k} {v}" for k, v in config.items() if v is not None)
    body = (
        f"<h1>TTS Explorer: a search tree</h1><p><b>Problem:</b> {html.escape(tree.question)}</p>"
        + (f"<p><b>Reference answer:</b> {html.escape(tree.reference)}</p>" if tree.reference else "")
        + f"<p><b>Settings:</b> {html.escape(settings)}; scorer {html.escape(str(tree.meta.get('scorer')))}; "
        f"policy {html.escape(str(tree.meta.get('policy', '')))}</p>"
        f"<p id='answer'><b>Answer:</b> {html.escape(str(answer)) if answer is not None else 'no answer'}"
        f"{verdict}</p><p><b>Compute:</b> {compute.get('generated_tokens', 0)} tokens generated, "
        f"{compute.get('prefill_tokens', 0)} prefilled, {compute.get('scorer_tokens', 0)} scored; "
        f"{compute.get('total_flops', 0):.3g} FLOPs (2 × parameters × tokens); "
        f"{compute.get('wall_s', 0):.1f} s</p><p class='meta'>Click a node to read its path; scroll to zoom.</p>"
        "<div id='tree' style='width:100%;height:600px'></div><div id='path'></div>"
    )
    nodes = {
        n.id: {
            "id": n.id,
            "parent": n.parent,
            "text": n.text,
            "score": n.score,
            "agg": n.agg_score,
            "status": n.status,
            "answer": n.answer,
            "edited": n.edited,
        }
        for n in tree
    }
    script = SHOW_PATH % {"figure": script_json(figure(tree, colours=colours)), "nodes": script_json(nodes)}
    return page("TTS Explorer tree", body, script)
