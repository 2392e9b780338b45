"""The live tree: a gr.HTML component that draws with plotly.js in the browser.

Python sends the figure as JSON in the component's value; the browser redraws it with
Plotly.react, which keeps zoom and pan (layout.uirevision) while a search streams.
Clicking a node triggers a `click` event whose data carries the node id. plotly.js is
served from the installed plotly package, so the page needs no internet.
"""

from __future__ import annotations

import gradio as gr

from ..render import PLOTLY_JS, to_json

JS_ON_LOAD = """
const box = element.querySelector('.tts-tree');
let bound = false;
function draw() {
  if (!window.Plotly || !props.value) return;
  let fig;
  try { fig = JSON.parse(props.value); } catch (e) { return; }
  window.Plotly.react(box, fig.data, fig.layout, {responsive: true, scrollZoom: true, displaylogo: false});
  box.dataset.nodes = String(fig.data.reduce((n, t) => n + (t.customdata ? t.customdata.length : 0), 0));
  if (!bound) {
    bound = true;
    box.on('plotly_click', (ev) => {
      const point = ev.points && ev.points[0];
      if (point && point.customdata !== undefined) trigger('click', {node: point.customdata});
    });
  }
}
function whenReady() { if (window.Plotly) draw(); else setTimeout(whenReady, 50); }
whenReady();
watch('value', draw);
"""


def plotly_static_dir() -> str:
    return str(PLOTLY_JS.parent)


def tree_view(elem_id: str = "tree-view", **kwargs) -> gr.HTML:
    return gr.HTML(
        value="",
        html_template='<div class="tts-tree" style="width:100%;min-height:560px"></div>',
        js_on_load=JS_ON_LOAD,
        head=f'<script src="/gradio_api/file={PLOTLY_JS}"></script>',
        elem_id=elem_id,
        **kwargs,
    )


def as_value(fig: dict) -> str:
    return to_json(fig)
