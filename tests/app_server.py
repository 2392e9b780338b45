"""Launch the real app on a free loopback port for tests (gradio_client and the browser)."""

from __future__ import annotations

from contextlib import contextmanager

from tts_explorer.loopback import free_port


@contextmanager
def running_app(settings):
    from tts_explorer.ui import launch

    port = free_port()
    demo = launch(host="127.0.0.1", port=port, block=False, settings=settings)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
