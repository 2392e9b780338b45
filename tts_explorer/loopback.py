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

from .llama_build import llama_server_binary

# without the networking flags Chromium keeps trying hosts that a closed network refuses
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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


class LlamaServer:
    """llama-server on a free loopback port serving a GGUF file with parallel slots; a context
    manager that starts it, waits until it answers, and stops it."""

    def __init__(self, gguf: str, slots: int = 16, context: int = 16384, threads: int | None = None):
        self.gguf, self.slots, self.context = gguf, slots, context
        self.threads = threads or usable_cores()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process = None

    def start(self) -> LlamaServer:
        import subprocess

        self.process = subprocess.Popen(
            [
                llama_server_binary(),
                "-m",
                self.gguf,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "-np",
                str(self.slots),
                "-c",
                str(self.context),
                "-t",
                str(self.threads),
                "--no-warmup",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server ended with exit code {self.process.returncode}")
            try:
                urllib.request.urlopen(self.url.removesuffix("/v1") + "/health", timeout=2)
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("llama-server did not come up within 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except Exception:  # noqa: BLE001 (it will not end: kill it)
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
