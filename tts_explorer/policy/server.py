"""An OpenAI-compatible inference server (vLLM, SGLang, llama.cpp's llama-server,
llama-cpp-python's server) behind the text-level policy protocol.

Source form: `http://HOST:PORT/v1`, with optional query settings: `tokenizer=` (a model
folder, a GGUF file or "embedded": the chat template is then applied here, byte for byte
as the local engine does; without one, prompts go through the server's chat endpoint),
`model=` (the served model's id, else the first the server lists), `params=` (parameter
count, for FLOPs, where the server does not report it), `timeout=` (seconds per request),
`max_n=` (the most choices one request asks for, default 16: llama-server refuses more),
`name=` (the policy's name in trees and results files, default "MODEL @ HOST:PORT"; a
stable name lets a results file resume whichever port the server listens on).

generate: one /v1/completions request per distinct prompt asking for all its `n` samples
(in requests of at most `max_n`); a server that returns fewer choices than asked
(llama-cpp-python's) gets the rest as concurrent single requests. Requests run
concurrently (the server batches them); Stop closes the in-flight connections. The step
separator is kept in the text; an end on the stop string and an end of sequence are told
apart by what each server reports (vLLM's `stop_reason`, llama-server's `stop_type`), else
by whether the text ends with the stop string. Tokens, log-probs and compute come from the
response (`usage`, with cached prompt tokens where reported). The judge reads top
log-probs, the confidence scorer prompt log-probs; a server without them gets one clear
line naming the missing feature.
"""

from __future__ import annotations

import http.client
import json
import math
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ..config import real_number, whole_number
from ..errors import UserError
from .base import Completion, StopRequested
from .compute import ComputeMeter
from .sources import local_tokenizer

CHAT_MARK = "\x00chat-messages:"  # a prompt rendered by the server's chat endpoint: the messages, then steps
CHAT_END = "\x00"
TOP_LOGPROBS = 20
DEFAULT_TIMEOUT_S = 120.0
MAX_CHOICES = 16  # choices per request: llama-server's limit; larger n goes out as several requests


class _Calls:
    """HTTP connections in flight, so that Stop can close them from another thread."""

    def __init__(self):
        self.lock, self.open, self.closed = threading.Lock(), set(), False

    def add(self, conn) -> None:
        with self.lock:
            if self.closed:
                raise StopRequested()
            self.open.add(conn)

    def remove(self, conn) -> None:
        with self.lock:
            self.open.discard(conn)

    def close_all(self) -> None:
        with self.lock:
            self.closed = True
            for conn in self.open:
                try:
                    if conn.sock is not None:
                        conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()


MAX_NAME_CHARS = 200


def _name(text: str) -> str:
    """A server URL's `name=`: one printable line of at most MAX_NAME_CHARS characters."""
    name = text.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise UserError(f"the server URL's name must be one printable line of 1 to {MAX_NAME_CHARS} characters")
    return name


class ServerPolicy:
    shares_searches = True  # the server's parallel slots batch the requests of several searches

    def __init__(self, source: str):
        url = urllib.parse.urlsplit(source)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise UserError(f"not a server URL: {source!r}")
        query = dict(urllib.parse.parse_qsl(url.query))
        self.base = f"{url.scheme}://{url.netloc}{url.path.rstrip('/')}"
        self.timeout = real_number(query.get("timeout", DEFAULT_TIMEOUT_S), "the server URL's timeout", 0.001, 86_400)
        self.max_n = whole_number(query.get("max_n", MAX_CHOICES), "the server URL's max_n", 1, 100_000)
        params = real_number(query["params"], "the server URL's params", 0, 1e15) if "params" in query else None
        name = _name(query["name"]) if "name" in query else None
        self.meter = ComputeMeter()
        self._seed, self._requests = 0, 0
        self._seed_lock = threading.Lock()
        self.supports_n = True
        self._eos: set[int] | None = None
        models = self._get("/models")
        listed = [m.get("id") for m in models.get("data", []) if isinstance(m, dict)]
        self.model = query.get("model") or (listed[0] if listed else None)
        if not self.model:
            raise UserError(f"the server at {self.base} lists no model")
        meta = next((m.get("meta") or {} for m in models.get("data", []) if m.get("id") == self.model), {})
        self.n_params = int(params if params is not None else float(meta.get("n_params") or 0))
        self.name = name or f"{self.model} @ {url.netloc}"
        self.tokenizer = _tokenizer(query.get("tokenizer")) if query.get("tokenizer") else None

    # --- HTTP -------------------------------------------------------------------------------
    def _connection(self, root: str | None = None):
        url = urllib.parse.urlsplit(root or self.base)
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        return kind(url.hostname, url.port, timeout=self.timeout), url.path

    def _request(
        self, method: str, path: str, body: dict | None = None, calls: _Calls | None = None, root: str | None = None
    ) -> dict:
        conn, prefix = self._connection(root)
        if calls is not None:
            calls.add(conn)
        try:
            conn.request(
                method,
                prefix + path,
                body=None if body is None else json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            data = response.read()
        except (ConnectionRefusedError, socket.gaierror) as exc:
            if calls is not None and calls.closed:
                raise StopRequested() from None
            raise UserError(f"the policy server at {self.base} is not reachable ({type(exc).__name__})") from None
        except TimeoutError:
            raise UserError(f"the policy server at {self.base} did not answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            if calls is not None and calls.closed:
                raise StopRequested() from None
            raise UserError(f"the policy server at {self.base} stopped answering ({type(exc).__name__})") from None
        finally:
            if calls is not None:
                calls.remove(conn)
            conn.close()
        try:
            payload = json.loads(data or b"{}")
        except json.JSONDecodeError:
            raise UserError(
                f"the policy server at {self.base} answered {path} with something that is not JSON "
                f"(HTTP {response.status})"
            ) from None
        if response.status >= 400:
            message = payload.get("error", payload) if isinstance(payload, dict) else payload
            if isinstance(message, dict):
                message = message.get("message", message)
            raise UserError(
                f"the policy server at {self.base} refused {path} (HTTP {response.status}): "
                f"{str(message).splitlines()[0][:160]}"
            )
        return payload

    def _get(self, path: str) -> dict:
        return self._request("GET", path)

    def _concurrently(self, bodies: list[tuple[str, dict]], should_stop: Callable[[], bool] | None) -> list[dict]:
        """POST every (path, body) at once; Stop closes the connections and raises StopRequested."""
        if should_stop is not None and should_stop():
            raise StopRequested()
        calls = _Calls()
        with ThreadPoolExecutor(max_workers=min(32, max(1, len(bodies)))) as pool:
            futures = [pool.submit(self._request, "POST", path, body, calls) for path, body in bodies]
            while not all(f.done() for f in futures):
                if should_stop is not None and should_stop():
                    calls.close_all()
                    for f in futures:
                        f.cancel()
                    raise StopRequested()
                time.sleep(0.02)
        return [f.result() for f in futures]

    # --- the protocol ------------------------------------------------------------------------
    def reseed(self, seed: int | None) -> None:
        self._seed = random.randrange(2**31) if seed is None else seed
        self._requests = 0

    def _next_seed(self) -> int:
        with self._seed_lock:
            self._requests += 1
            return self._seed + self._requests

    def eos_ids(self) -> set[int]:
        """End-of-sequence token ids: from the local tokenizer, else asked of the server (llama-server's
        /props and /tokenize); empty when neither tells."""
        if self._eos is None:
            self._eos = set()
            if self.tokenizer is not None:
                self._eos = {i for i in [self.tokenizer.eos_token_id] if isinstance(i, int)}
            else:
                root = self.base.removesuffix("/v1")
                try:
                    token = self._request("GET", "/props", root=root).get("eos_token")
                    if isinstance(token, str) and token:
                        found = (
                            self._request(
                                "POST", "/tokenize", {"content": token, "parse_special": True}, root=root
                            ).get("tokens")
                            or []
                        )
                        self._eos = {i for i in found[:1] if isinstance(i, int)}
                except UserError:
                    pass
        return self._eos

    def warm(self, prompt: str) -> None:
        """Check the server answers, and leave the prompt in its prefix cache."""
        self.generate([prompt], [1], max_tokens=1, temperature=0.0, stop=None)

    def forget(self) -> None:
        """Nothing is kept here (the server's prefix cache is its own)."""

    def chat_prompt(self, messages: list[dict], continue_final: bool = False) -> str:
        if self.tokenizer is not None:
            return self.tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=not continue_final,
                continue_final_message=continue_final,
            )
        return CHAT_MARK + json.dumps(messages) + CHAT_END

    def _body(
        self,
        prompt: str,
        n: int,
        max_tokens: int,
        temperature: float,
        top_p: float,
        stop: str | None,
        logprobs: int = 1,
    ) -> tuple[str, dict]:
        body = {
            "model": self.model,
            "n": n,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "seed": self._next_seed(),
            "logprobs": logprobs,
            "include_stop_str_in_output": True,
        }
        if stop:
            body["stop"] = [stop]
        if prompt.startswith(CHAT_MARK):  # the server's chat template: the messages, the steps as the reply so far
            head, _, steps = prompt[len(CHAT_MARK) :].partition(CHAT_END)
            messages = json.loads(head)
            if steps:
                messages = messages + [{"role": "assistant", "content": steps}]
                body["continue_final_message"], body["add_generation_prompt"] = True, False
            body["messages"] = messages
            body["logprobs"], body["top_logprobs"] = True, max(logprobs, 0)
            return "/chat/completions", body
        body["prompt"] = prompt
        return "/completions", body

    def generate(
        self,
        prompts: Sequence[str],
        n: Sequence[int],
        max_tokens: int,
        temperature: float,
        stop: str | None = "\n\n",
        top_p: float = 1.0,
        keep_state: bool = True,
        should_stop: Callable[[], bool] | None = None,
        meter: ComputeMeter | None = None,
        role: str = "policy",
    ) -> list[list[Completion]]:
        meter = meter or self.meter
        if len(prompts) != len(n):
            raise ValueError("prompts and n differ in length")
        wanted = [(i, k) for i, k in enumerate(n) if k > 0]
        per_request = self.max_n if self.supports_n else 1
        asks = [(i, min(per_request, k - start)) for i, k in wanted for start in range(0, k, per_request)]
        bodies = [self._body(prompts[i], k, max_tokens, temperature, top_p, stop) for i, k in asks]
        replies = self._concurrently(bodies, should_stop)
        results: list[list[Completion]] = [[] for _ in prompts]
        for (i, _), (_path, body), reply in zip(asks, bodies, replies):
            results[i] += self._completions(reply, stop, body, meter, role)
        short = [(i, k - len(results[i])) for i, k in wanted if len(results[i]) < k]
        if short:  # the server returns one choice whatever n is: the rest as single requests
            self.supports_n = False
            more = [(i, 1) for i, missing in short for _ in range(missing)]
            bodies = [self._body(prompts[i], 1, max_tokens, temperature, top_p, stop) for i, _ in more]
            for (i, _), (_path, body), reply in zip(more, bodies, self._concurrently(bodies, should_stop)):
                results[i] += self._completions(reply, stop, body, meter, role)[:1]
        return results

    def _completions(
        self, reply: dict, stop: str | None, body: dict, meter: ComputeMeter, role: str
    ) -> list[Completion]:
        """The reply's choices as completions, its compute counted: the generated tokens from the
        choices' own token lists where they have them (llama-server's usage counts one of n)."""
        prefill = (body.get("messages") or [{}])[-1].get("content", "") if body.get("continue_final_message") else ""
        out = [self._completion(choice, stop, prefill) for choice in reply.get("choices", [])]
        usage = reply.get("usage") or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        counted = all(c.n_tokens for c in out) and out
        meter.add(
            role,
            self.n_params,
            generated=sum(c.n_tokens for c in out) if counted else int(usage.get("completion_tokens") or 0),
            prefill=max(0, int(usage.get("prompt_tokens") or 0) - int(cached)),
        )
        return out

    def _completion(self, choice: dict, stop: str | None, prefill: str = "") -> Completion:
        text = choice.get("text")
        if text is None:
            text = (choice.get("message") or {}).get("content") or ""
            if prefill and text.startswith(prefill):  # a chat reply that repeats the message it continued
                text = text[len(prefill) :]
        tokens, logprobs, ids = _token_logprobs(choice.get("logprobs"))
        # vLLM's stop_reason, llama-server's stop_type, SGLang's matched_stop; ... when none is told
        said = next((choice[k] for k in ("stop_reason", "stop_type", "matched_stop") if k in choice), ...)
        eos = self.eos_ids()
        if choice.get("finish_reason") == "length":
            reason = "length"
        elif said is not ...:
            reason = "eos" if said in (None, "eos") or isinstance(said, int) else "stop"
        elif ids and eos:  # llama-server: the last token is end-of-sequence, or the stop string's (its text left out)
            reason = "eos" if ids[-1] in eos or not stop else "stop"
        else:  # nothing to go by but the text
            reason = "stop" if stop and (text.endswith(stop) or stop in "".join(tokens)) else "eos"
        if reason == "stop" and stop and not text.endswith(stop):
            text += stop  # a server that leaves the matched stop string out of the text
        return Completion(text, len(tokens), sum(logprobs), reason)

    def choice_probs(
        self, prompts: Sequence[str], choices: Sequence[str], meter: ComputeMeter | None = None, role: str = "scorer"
    ) -> list[list[float]]:
        meter = meter or self.meter
        bodies = [self._body(p, 1, 1, 0.0, 1.0, None, logprobs=TOP_LOGPROBS) for p in prompts]
        out = []
        for (_, body), reply in zip(bodies, self._concurrently(bodies, None)):
            self._completions(reply, None, body, meter, role)
            top = _first_top_logprobs((reply.get("choices") or [{}])[0].get("logprobs"))
            if top is None:
                raise UserError(
                    f"the policy server at {self.base} returns no top log-probs, which the judge scorer needs"
                )
            probs = [sum(math.exp(lp) for token, lp in top.items() if token.strip() == c.strip()) for c in choices]
            total = sum(probs)
            out.append([p / total for p in probs] if total > 0 else [1.0 / len(choices)] * len(choices))
        return out

    def step_logprobs(
        self, prompt: str, steps: Sequence[str], meter: ComputeMeter | None = None, role: str = "scorer"
    ) -> list[float]:
        """Mean log-prob of each step's tokens from the server's prompt log-probs (echo)."""
        if prompt.startswith(CHAT_MARK):
            raise UserError(
                f"prompt log-probs through the chat endpoint of {self.base} are not supported: give the "
                "server URL a tokenizer= (the confidence scorer needs them)"
            )
        text, spans = prompt, []
        for step in steps:
            spans.append((len(text), len(text) + len(step)))
            text += step + "\n\n"
        body = {
            "model": self.model,
            "prompt": text,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 0,
            "prompt_logprobs": 0,
        }
        reply = self._concurrently([("/completions", body)], None)[0]
        self._completions(reply, None, body, meter or self.meter, role)
        choice = (reply.get("choices") or [{}])[0]
        logprobs = choice.get("logprobs") or {}
        offsets, values = logprobs.get("text_offset"), logprobs.get("token_logprobs")
        if not offsets or not values or len(offsets) != len(values):
            raise UserError(
                f"the policy server at {self.base} returns no prompt log-probs, which the confidence "
                "scorer needs for steps it did not sample"
            )
        out = []
        for start, end in spans:
            inside = [v for o, v in zip(offsets, values) if start <= o < end and v is not None]
            out.append(sum(inside) / len(inside) if inside else 0.0)
        return out


def _token_logprobs(logprobs) -> tuple[list[str], list[float], list[int]]:
    """(tokens, their log-probs, their ids where given) from the completions or the chat format."""
    if not isinstance(logprobs, dict):
        return [], [], []
    if isinstance(logprobs.get("content"), list):  # chat style: [{"id", "token", "logprob", "top_logprobs"}]
        items = [x for x in logprobs["content"] if isinstance(x, dict)]
        ids = [x["id"] for x in items if isinstance(x.get("id"), int)]
        return (
            [str(x.get("token", "")) for x in items],
            [float(x.get("logprob") or 0.0) for x in items],
            ids if len(ids) == len(items) else [],
        )
    tokens = logprobs.get("tokens") or []
    values = [float(v) for v in logprobs.get("token_logprobs") or [] if v is not None]
    return [str(t) for t in tokens], values, []


def _first_top_logprobs(logprobs) -> dict[str, float] | None:
    """token -> log-prob of the first generated position's top alternatives, or None when absent."""
    if not isinstance(logprobs, dict):
        return None
    if isinstance(logprobs.get("content"), list) and logprobs["content"]:
        top = logprobs["content"][0].get("top_logprobs")
        if isinstance(top, list) and top:
            return {str(x.get("token", "")): float(x.get("logprob", -1e9)) for x in top if isinstance(x, dict)}
        return None
    top = logprobs.get("top_logprobs")
    if isinstance(top, list) and top and isinstance(top[0], dict) and top[0]:
        return {str(k): float(v) for k, v in top[0].items()}
    return None


def _tokenizer(source: str):
    """A tokenizer for local chat templates: "embedded", a GGUF file or a model folder."""
    try:
        return local_tokenizer(source)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load the tokenizer {source!r}: {str(exc).splitlines()[0][:120]}") from None
