"""Helpers for processes that run beside this one on loopback: a free port, waiting for an
HTTP server to answer, and where Debian's headless Chromium is and the flags it needs.

Shared by the benchmark, the tests and anything that starts a local server or browser.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
import urllib.request

# without the networking flags Chromium keeps trying hosts that a closed network refuses
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 300) -> None:
    """Return once `url` answers (any status), or raise RuntimeError after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def chromium_path() -> str | None:
    return os.environ.get("TTS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
