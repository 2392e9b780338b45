"""How many of a session's runs wait in Gradio's queue, for Stop to cancel them as they start.

The one place that reads Gradio's internal queue (its structures are read defensively:
0 where they are not found, so a Gradio release that moves them turns queued-run
cancelling off and nothing else).
"""

from __future__ import annotations

import gradio as gr


def queued_runs(request: gr.Request | None, names: tuple[str, ...], concurrency_id: str = "search") -> int:
    """How many events (by API name) of the requesting session wait in the queue."""
    try:
        blocks = request.request.app.get_blocks()
        waiting = blocks._queue.event_queue_per_concurrency_id[concurrency_id].queue
        return sum(
            1 for event in list(waiting) if event.session_hash == request.session_hash and event.fn.api_name in names
        )
    except (AttributeError, KeyError, TypeError):
        return 0
