"""The web app: `build_demo()` makes the page, `launch()` serves it (HOST and PORT from the
environment, a queue that runs one search at a time) and loads the first offered model in
the background, with the prompt template's shared part prefilled, so that a visitor's
first Run waits for neither."""

from __future__ import annotations

import os
import threading
import time

from ..assets import asset
from ..errors import UserError
from ..prompts import load_template
from ..settings import UPLOAD_LIMIT_BYTES, Settings
from .app import build_demo
from .session import close_idle

READY_LINE = "model ready:"  # printed once the first model is loaded (the benchmark waits for it)


def preload(model: str) -> threading.Thread:
    def load() -> None:
        from ..policy.loading import load_policy

        started = time.perf_counter()
        try:
            policy = load_policy(model)
        except UserError as exc:  # the page reports it again when a visitor runs a search
            print(f"model not loaded: {exc}", flush=True)
            return
        policy.warm(load_template().warm_up_prompt(policy))  # a first Run prefills only its question
        print(f"{READY_LINE} {policy.name} in {time.perf_counter() - started:.1f} s", flush=True)

    thread = threading.Thread(target=load, name="preload", daemon=True)
    thread.start()
    return thread


def sweep_idle_sessions(idle_seconds: float) -> threading.Thread:
    """In the background, drop the trees and files of sessions unused for `idle_seconds` (an API
    client never says it left), checking every tenth of that (at most every minute)."""

    def sweep() -> None:
        while True:
            time.sleep(min(60.0, max(1.0, idle_seconds / 10)))
            close_idle(idle_seconds)

    thread = threading.Thread(target=sweep, name="session-sweep", daemon=True)
    thread.start()
    return thread


def launch(host: str | None = None, port: int | None = None, block: bool = True, settings=None):
    try:
        settings = settings or Settings.from_env()
    except UserError as exc:  # the operator's settings: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
    demo = build_demo(settings)
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(
        server_name=host or os.environ.get("HOST", "0.0.0.0"),
        server_port=port or int(os.environ.get("PORT", "7860")),
        css=asset("app.css").read_text(),
        prevent_thread_lock=True,
        show_error=True,
        max_file_size=UPLOAD_LIMIT_BYTES,  # an upload over the cap is refused as it arrives, never stored
        state_session_capacity=settings.max_sessions,
    )
    sweep_idle_sessions(settings.session_idle_s)
    preload(settings.models[0])
    if block:
        demo.block_thread()
    return demo


__all__ = ["build_demo", "launch"]
