"""Times a visitor sees: app start to page served, page ready, first node drawn, run done.

Starts `python app.py` on a free port, opens the page in headless chromium, presses Run
on the default example and waits for the tree. Prints one line per figure.

    python bench/app_timings.py [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from tts_explorer.loopback import CHROMIUM_ARGS, chromium_path, free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent

NODES = "Number((document.querySelector('.tts-tree') || {dataset: {}}).dataset.nodes || 0)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2, help="runs of the default example (the first loads the model)")
    parser.add_argument("--screenshot", default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    started = time.perf_counter()
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
        print(f"app start to page served: {time.perf_counter() - started:.1f} s")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("#run")
            print(f"page ready: {time.perf_counter() - t0:.1f} s")
            for run in range(args.runs):
                t1 = time.perf_counter()
                page.click("#run")
                if run:  # the last run's tree stays until the new one starts
                    page.wait_for_function(f"{NODES} <= 1", timeout=300000)
                page.wait_for_function(f"{NODES} > 1", timeout=300000)
                first = time.perf_counter() - t1
                page.wait_for_function("document.querySelector('#status').innerText.startsWith('Done')", timeout=600000)
                done = time.perf_counter() - t1
                label = (
                    "first run, pressed as soon as the page is ready (waits for the model the app loads at start)"
                    if run == 0
                    else f"run {run + 1}"
                )
                print(
                    f"{label}: first node drawn {first:.1f} s, finished {done:.1f} s, "
                    f"{page.evaluate(NODES)} nodes; {page.inner_text('#status')}"
                )
                page.wait_for_timeout(500)
            if args.screenshot:
                page.screenshot(path=args.screenshot, full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
