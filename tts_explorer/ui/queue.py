"""What Gradio's queue knows of a session's runs: how many wait (for Stop to say so), and when
the running one was enqueued (a run enqueued before the session's last Stop ends as it starts).

The one place that reads Gradio's internal queue (read defensively: 0 or None where its
structures are not found, so a Gradio release that moves them turns cancelling queued runs
off and nothing else).
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


def enqueued_at(request: gr.Request | None) -> float | None:
    """When the running event of this request entered the queue (time.monotonic()), or None."""
    try:
        blocks = request.request.app.get_blocks()
        running = [event for job in blocks._queue.active_jobs if job for event in job]
        return next((event.enqueue_time for event in running if event.request is request.request), None)
    except (AttributeError, KeyError, TypeError):
        return None
