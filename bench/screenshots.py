"""The README's screenshots, taken in headless chromium from the running app on the embedded model.

1. docs/screenshot.png: the Search tab after the default example (beam search, the default scorer).
2. docs/edit-probe.png: a probe of the PRM: a number changed in a correct first step, the
   edited step's score beside the original's, the edited node ringed in the tree.
3. docs/compare.png: the Compare tab, best-of-N, beam search and DVTS side by side.

    python bench/screenshots.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tts_explorer.loopback import CHROMIUM_ARGS, chromium_path, free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
POINT = """(id) => { const gd = document.querySelector('#tree-view .tts-tree');
  for (const t of gd._fullData) { const i = (t.customdata || []).indexOf(id);
    if (i < 0 || t.name === 'clicked') continue; const box = gd.getBoundingClientRect();
    return {x: box.left + gd._fullLayout.xaxis._offset + gd._fullLayout.xaxis.l2p(t.x[i]),
            y: box.top + gd._fullLayout.yaxis._offset + gd._fullLayout.yaxis.l2p(t.y[i])}; } return null; }"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={**os.environ, "PORT": str(port), "HOST": "127.0.0.1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(url)
            page.wait_for_selector("#run")
            page.click("#run")
            page.wait_for_function("document.querySelector('#status').innerText.startsWith('Done')", timeout=600000)
            page.screenshot(path=str(ROOT / "docs" / "screenshot.png"), full_page=False)
            first = page.evaluate("""(() => { const gd = document.querySelector('#tree-view .tts-tree');
                const t = gd._fullData.find(t => t.name.startsWith('steps')); return Math.min(...t.customdata); })()""")
            point = page.evaluate(POINT, first)
            page.mouse.click(point["x"], point["y"])
            page.wait_for_selector(f"#path-panel[data-node='{first}']", timeout=30000)
            text = page.input_value("#edit-text textarea")
            digits = [c for c in text if c.isdigit()]
            edited = text.replace(digits[-1], str((int(digits[-1]) + 3) % 10), 1) if digits else text + " 7 + 5 = 13"
            page.fill("#edit-text textarea", edited)
            page.click("#edit-step")
            page.wait_for_function("document.querySelector('#status').innerText.includes('added')", timeout=120000)
            page.screenshot(path=str(ROOT / "docs" / "edit-probe.png"), full_page=True)
            print(f"edited node {first}: {text!r} -> {edited!r}")
            page.click("button[role=tab]:has-text('Compare')")
            page.locator("#cmp-strategies label", has_text="DVTS").first.click()
            page.click("#cmp-run")
            page.wait_for_function("document.querySelector('#cmp-status').innerText.startsWith('Done')", timeout=900000)
            page.screenshot(path=str(ROOT / "docs" / "compare.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
