"""math-verify in a bounded worker process: every call has a time limit and a memory cap.

sympy (under math-verify) can spend unbounded time and memory on a short string
("9^{9^{9}}" asks for a number of 370 million digits) and holds the interpreter lock
while it does, so in the app's process one such answer would freeze every visitor; its
own timeouts use signals, which work only in a main thread. Here each call goes over
JSON lines to a child process (`python -m tts_explorer.mathcheck`), started on first use
and killed and restarted when a call runs over its limit. Callers get MathTimeout, or
MathUnavailable when the worker cannot start; they treat both as "not comparable".

Operations: `key` (a canonical form of an answer, see `canonical_key`) and `verify`
(math-verify's own equivalence of two answers).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time

STARTUP_TIMEOUT_S = 90.0  # importing sympy and math-verify: ~1-2 s here, far more on a loaded machine
MEMORY_CAP_BYTES = 2 << 30
POINTS = ((0.5377, 1.8339, -2.2588, 0.8622), (-1.3077, -0.4336, 0.3426, 3.5784))  # where free symbols are evaluated


class MathTimeout(Exception):
    """The worker did not answer within the call's time limit (it has been restarted)."""


class MathUnavailable(Exception):
    """The worker could not be started or answered nonsense."""


# --- the worker process ------------------------------------------------------------------
def _significant(value: complex) -> list[str]:
    return [f"{value.real:.10g}", f"{value.imag:.10g}"]


def canonical_key(text: str, limit: float) -> list | None:
    """A JSON-ready canonical form of an answer, equal for equivalent answers in the common
    cases: ["num", p, q] for a rational value, ["approx", re, im] for another number,
    ["expr", names, values...] for an expression (its values at fixed points), ["sym", srepr]
    for sets, intervals and the like; None when math-verify cannot parse it."""
    import sympy
    from math_verify import parse

    wrapped = text if "$" in text or "\\boxed" in text else f"${text}$"
    parsed = parse(wrapped, parsing_timeout=limit) or parse(text, parsing_timeout=limit)
    exprs = [p for p in parsed if not isinstance(p, str)]
    if not exprs:
        return None
    expr = exprs[0]
    if isinstance(expr, sympy.Equality) and isinstance(expr.lhs, sympy.Symbol):  # "x = 5" states 5
        expr = expr.rhs
    if not isinstance(expr, sympy.Expr):
        return ["sym", sympy.srepr(expr)]
    if not expr.free_symbols:
        value = sympy.nsimplify(expr, rational=True) if expr.has(sympy.Float) else sympy.simplify(expr)
        if value.is_Rational:
            return ["num", int(value.p), int(value.q)]
        return ["approx", *_significant(complex(value.evalf(20)))]
    names = sorted(expr.free_symbols, key=lambda s: s.name)
    values = []
    for point in POINTS:
        subs = {symbol: point[i % len(point)] + i // len(point) for i, symbol in enumerate(names)}
        values += _significant(complex(expr.evalf(20, subs=subs)))
    return ["expr", [s.name for s in names], *values]


def _verify(gold: str, answer: str, limit: float) -> bool:
    from math_verify import parse, verify

    def parsed(text: str):
        wrapped = text if "$" in text or "\\boxed" in text else f"${text}$"
        return parse(wrapped, parsing_timeout=limit) or parse(text, parsing_timeout=limit)

    return bool(verify(parsed(gold), parsed(answer), timeout_seconds=limit))


def _serve() -> None:
    import logging
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))
    except (ValueError, OSError):
        pass
    logging.disable(logging.CRITICAL)
    import math_verify  # noqa: F401  (imported before "ready" so that calls are not charged for it)
    import sympy  # noqa: F401

    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
            op, args, limit = request["op"], request["args"], max(1, int(request.get("limit", 2)))
            if op == "key":
                result = canonical_key(args[0], limit)
            elif op == "verify":
                result = _verify(args[0], args[1], limit)
            else:
                raise ValueError(f"unknown op {op!r}")
            reply = {"ok": result}
        except Exception as exc:  # any failure is this call's answer, never the worker's end
            reply = {"error": type(exc).__name__}
        out.write(json.dumps(reply) + "\n")
        out.flush()


# --- the client in the app's process ----------------------------------------------------------
class MathWorker:
    """One child process, used by one caller at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._buffer = b""

    def _start(self) -> None:
        env = {**os.environ, "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1"}
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tts_explorer.mathcheck"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            raise MathUnavailable(f"cannot start the math worker: {exc}") from None
        self._buffer = b""
        try:
            self._read_line(STARTUP_TIMEOUT_S)
        except MathTimeout:
            self._kill()
            raise MathUnavailable("the math worker did not start") from None

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                stream.close()
        self._proc = None

    def _read_line(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise MathTimeout()
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self._kill()
                raise MathUnavailable("the math worker ended")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            self._kill()
            raise MathUnavailable("the math worker answered nonsense") from None

    def call(self, op: str, args: list, timeout: float):
        """The result of `op`, or MathTimeout after `timeout` seconds (the worker is then restarted)."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            message = json.dumps({"op": op, "args": args, "limit": max(1, int(timeout + 0.5))}) + "\n"
            try:
                self._proc.stdin.write(message.encode("utf-8"))
                self._proc.stdin.flush()
                reply = self._read_line(timeout)
            except MathTimeout:
                self._kill()
                raise
            except (BrokenPipeError, OSError):
                self._kill()
                raise MathUnavailable("the math worker ended") from None
        if "error" in reply:
            return None
        return reply.get("ok")

    def close(self) -> None:
        with self._lock:
            self._kill()


WORKER = MathWorker()

if __name__ == "__main__":
    _serve()
