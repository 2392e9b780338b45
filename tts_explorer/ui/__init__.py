"""The web app: `build_demo()` makes the page, `launch()` serves it (HOST and PORT from the
environment, a queue that runs one search at a time)."""
from __future__ import annotations

import os

from ..prompts import ASSETS
from .app import build_demo


def launch(host: str | None = None, port: int | None = None, block: bool = True, settings=None):
    demo = build_demo(settings)
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(server_name=host or os.environ.get("HOST", "0.0.0.0"),
                server_port=port or int(os.environ.get("PORT", "7860")),
                css=(ASSETS / "app.css").read_text(), prevent_thread_lock=not block, show_error=True)
    return demo


__all__ = ["build_demo", "launch"]
