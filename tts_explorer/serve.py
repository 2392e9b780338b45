"""`tts-explorer serve`: test-time scaling behind an OpenAI-compatible endpoint.

POST /v1/chat/completions answers the last user message by a search: the model name says the
policy, the strategy and the budget as POLICY/STRATEGY/N[/SCORER] (e.g.
"embedded/beam/16/smollm-probe"; GET /v1/models lists one per offered policy and strategy),
and an extra body field "tts" may set any search setting (n, beam_width, max_steps,
temperature, aggregation, selection, scorer, ...). The reply's message is the chosen answer's
solution (its steps, a blank line between them); `usage` holds the tokens (prompt: prefilled,
completion: generated plus the scorer's), and the extra field "tts" the answer, the compute
and the whole tree. With "stream": true each step of the solution streams as soon as the
search has settled on it (every way it can still go passes through it: a beam search's kept
beams share it; best-of-N settles only at the end), SSE comments keep the connection alive
between iterations, and the last chunk holds the usage and the tree. Errors are
OpenAI-style error objects. The operator's settings are the page's (TTS_MODELS,
TTS_SCORERS, the run caps, TTS_SEARCH_SLOTS), and so are the input checks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import fields, replace

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from .config import MAX_N, PAGE_DEFAULTS, SearchConfig, real_number, whole_number
from .errors import UserError, first_line
from .events import IterationDone
from .policy.loading import load_policy
from .runs import RunRequest, search_events
from .strategies import STRATEGIES
from .tree import Node, SearchTree

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 64 * 1024
SLOT_POLL_S = 0.5  # how often a waiting request and a running search look whether their client has gone
TUNABLE = {f.name for f in fields(SearchConfig)} - {"strategy", "seed"}  # the search settings "tts" may set
EXTRA_KEYS = TUNABLE | {"scorer", "reference"}  # everything "tts" may set


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.param = status, kind, param

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": None}}


def model_ids(settings) -> list[str]:
    """One model id per offered policy and page strategy, at the page's budget."""
    return [
        f"{policy}/{name}/{PAGE_DEFAULTS.n}"
        for policy in settings.models
        for name, strategy in STRATEGIES.items()
        if strategy.on_page
    ]


def parse_request(body, settings) -> RunRequest:
    """The checked search a chat completion asks for (ApiError with one line otherwise)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not 1 <= len(model) <= 400:
        raise ApiError(400, "model must be POLICY/STRATEGY/N[/SCORER]", param="model")
    parts = model.split("/")
    # the policy itself may hold "/" (a path): the strategy and N are the last fields
    scorer = None
    if len(parts) >= 4 and not parts[-1].isdigit():
        scorer, parts = parts[-1], parts[:-1]
    if len(parts) < 3:
        raise ApiError(404, f"unknown model {model[:80]!r}: write POLICY/STRATEGY/N[/SCORER]", param="model")
    policy, strategy, n = "/".join(parts[:-2]), parts[-2], parts[-1]
    if policy not in settings.models:
        raise ApiError(
            404, f"policy {policy[:80]!r} is not offered here; offered: {', '.join(settings.models)}", param="model"
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, "messages must be a non-empty list of {role, content} objects", param="messages")
    users = [m for m in messages if m.get("role") == "user"]
    question = users[-1].get("content") if users else None
    if isinstance(question, list):  # content parts: the text ones
        question = " ".join(p.get("text", "") for p in question if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(question, str):
        raise ApiError(400, "the last user message must hold the problem as text", param="messages")
    extra = body.get("tts") or {}
    if not isinstance(extra, dict) or not set(extra) <= EXTRA_KEYS:
        raise ApiError(400, f"tts may set: {', '.join(sorted(EXTRA_KEYS))}", param="tts")
    scorer = extra.get("scorer", scorer) or settings.scorers[0]
    if scorer not in settings.scorers:
        raise ApiError(
            400,
            f"scorer {str(scorer)[:80]!r} is not offered here; offered: {', '.join(settings.scorers)}",
            param="tts.scorer",
        )
    try:
        values = {"n": whole_number(extra.get("n", n), "n", 1, MAX_N)}
        for name in TUNABLE - {"n"}:
            if name in extra:
                kind = type(getattr(PAGE_DEFAULTS, name))
                values[name] = (
                    whole_number(extra[name], name, 0, 10**9)
                    if kind is int
                    else real_number(extra[name], name, -1e9, 1e9)
                    if kind is float
                    else extra[name]
                )
        config = replace(PAGE_DEFAULTS, **values, strategy=strategy)
        return RunRequest(
            question, extra.get("reference"), config, settings.scorer(scorer), policy, limits=settings.limits
        )
    except UserError as exc:
        raise ApiError(400, first_line(exc)) from None


def solution(tree: SearchTree, strategy: str) -> list[Node]:
    """The chosen answer's steps; when no answer was chosen, the steps the search settled on
    (what a stream has already sent; none for a strategy that does not settle)."""
    return tree.chosen_nodes() or (tree.settled_nodes() if STRATEGIES[strategy].settles else [])


def usage(tree: SearchTree) -> dict:
    compute = tree.meta.get("compute") or {}
    prompt = int(compute.get("prefill_tokens", 0))
    completion = int(compute.get("generated_tokens", 0)) + int(compute.get("scorer_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def run(request: RunRequest, slots: threading.BoundedSemaphore, should_stop=None, on_event=None) -> SearchTree:
    """The search, in one of the server's search slots (ApiError 429 when none frees up soon);
    `should_stop` (the client has gone) ends the wait for a slot and the search."""
    deadline = time.monotonic() + (request.limits.seconds or 60)
    while not slots.acquire(timeout=SLOT_POLL_S):
        if should_stop is not None and should_stop():
            raise ApiError(499, "the client closed the connection")
        if time.monotonic() > deadline:
            raise ApiError(429, "every search slot is busy: try again shortly", kind="rate_limit_error")
    try:
        policy = load_policy(request.model)
        tree = request.new_tree(policy.name)
        for event in search_events(tree, policy, request, should_stop):
            if on_event is not None:
                on_event(tree, event)
        return tree
    finally:
        slots.release()


def create_app(settings=None):
    """The FastAPI app of the endpoint (settings: the page's, from the environment by default)."""
    from .settings import Settings

    settings = settings or Settings.from_env()
    slots = threading.BoundedSemaphore(settings.search_slots)
    app = FastAPI(title="TTS Explorer", docs_url=None, redoc_url=None)

    @app.exception_handler(ApiError)
    async def api_error(_request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.get("/v1/models")
    def models():
        return {
            "object": "list",
            "data": [{"id": i, "object": "model", "owned_by": "tts-explorer"} for i in model_ids(settings)],
        }

    @app.post("/v1/chat/completions")
    async def chat(http: Request):
        raw = await http.body()
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, f"the body is over {MAX_BODY_BYTES // 1024} kB")
        try:
            body = json.loads(raw, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
        except (ValueError, RecursionError):
            raise ApiError(400, "the body is not valid JSON") from None
        request = parse_request(body, settings)
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if body.get("stream") is True:
            return StreamingResponse(
                _stream(request, slots, ident, created, body["model"]), media_type="text/event-stream"
            )
        gone, error = threading.Event(), None
        async with anyio.create_task_group() as group:  # raised inside, an error would come out as a group
            group.start_soon(_watch, http, gone)
            try:
                tree = await anyio.to_thread.run_sync(run, request, slots, gone.is_set)
            except (UserError, ApiError) as exc:
                error = exc
            finally:
                group.cancel_scope.cancel()
        if error is not None:
            raise error if isinstance(error, ApiError) else ApiError(400, first_line(error)) from None
        return {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": "\n\n".join(n.text for n in solution(tree, request.config.strategy)),
                    },
                }
            ],
            "usage": usage(tree),
            "tts": _extra(tree),
        }

    return app


async def _watch(http: Request, gone: threading.Event) -> None:
    """Set `gone` when the client closes the connection (its search stops: nobody reads it)."""
    while not await http.is_disconnected():
        await anyio.sleep(SLOT_POLL_S)
    gone.set()


def _extra(tree: SearchTree) -> dict:
    return {
        "answer": tree.meta.get("answer"),
        "correct": tree.meta.get("correct"),
        "stopped": tree.meta.get("stopped"),
        "compute": tree.meta.get("compute"),
        "tree": tree.to_dict(),
    }


def _chunk(ident: str, created: int, model: str, delta: dict, finish=None, **extra) -> str:
    body = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"


async def _stream(request: RunRequest, slots, ident: str, created: int, model: str):
    """SSE: each iteration a keep-alive comment and the steps the search has settled on since
    (read on the search's thread, between its steps), then the chosen solution's remaining
    steps, the usage and [DONE]; an error as one error chunk."""
    progress: list[str] = []
    sent: list[int] = []  # the ids of the steps streamed so far
    done = anyio.Event()
    gone = threading.Event()  # set when the client leaves mid-stream: the search stops
    box: dict = {}

    def send(steps) -> None:
        for node in steps[len(sent) :]:
            progress.append(_chunk(ident, created, model, {"content": ("\n\n" if sent else "") + node.text}))
            sent.append(node.id)

    settles = STRATEGIES[request.config.strategy].settles

    def note(tree: SearchTree, event) -> None:
        if isinstance(event, IterationDone):
            progress.append(f": iteration {event.iteration}\n\n")
            if settles:
                send(tree.settled_nodes())

    async def work():
        try:
            box["tree"] = await anyio.to_thread.run_sync(lambda: run(request, slots, gone.is_set, note))
        except (UserError, ApiError) as exc:
            box["error"] = exc
        finally:
            done.set()

    async with anyio.create_task_group() as group:
        group.start_soon(work)
        try:
            yield _chunk(ident, created, model, {"role": "assistant", "content": ""})
            while not done.is_set():
                while progress:
                    yield progress.pop(0)
                with anyio.move_on_after(0.5):
                    await done.wait()
        finally:  # the client left (the stream was cancelled or closed) before the search ended
            if not done.is_set():
                gone.set()
    if "error" in box:
        error = box["error"] if isinstance(box["error"], ApiError) else ApiError(400, first_line(box["error"]))
        yield f"data: {json.dumps(error.body())}\n\n"
        yield "data: [DONE]\n\n"
        return
    tree = box["tree"]
    chosen = solution(tree, request.config.strategy)
    if [n.id for n in chosen[: len(sent)]] != sent:  # cannot happen while no strategy revives a pruned path
        log.warning("the chosen solution does not start with the streamed steps %s", sent)
    send(chosen)
    while progress:
        yield progress.pop(0)
    yield _chunk(ident, created, model, {}, "stop", usage=usage(tree), tts=_extra(tree))
    yield "data: [DONE]\n\n"


def serve(host: str = "127.0.0.1", port: int = 8000, settings=None) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
