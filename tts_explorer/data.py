"""Reading problem sets: GSM8K-style (`question`, `answer` ending '#### N') and MATH-style
(`problem`, `answer`) JSONL, from a path or a shipped set's name (assets.DATASETS). A
malformed row is reported and skipped, never fatal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .answers import gold_answer
from .assets import DATASETS, data_path
from .errors import UserError, first_line


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSONL text: split at "\n" only (a JSON string may hold U+2028 and other
    characters that str.splitlines() would split at), a trailing "\r" dropped."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def read_jsonl(path: str | Path, parse, limit: int | None = None) -> tuple[list, list[str]]:
    """(parsed rows, one message per skipped row) from a JSONL file. `parse(row)` returns an
    item, or raises ValueError / KeyError / TypeError with what the row lacks."""
    path = data_path(str(path))
    try:
        lines = jsonl_lines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        hint = f" (no such file; shipped sets: {', '.join(DATASETS)})" if isinstance(exc, FileNotFoundError) else ""
        raise UserError(f"cannot read data file {str(path)!r}: {exc.__class__.__name__}{hint}") from None
    items, skipped = [], []
    for number, line in enumerate(lines, start=1):
        if limit is not None and len(items) >= limit:
            break
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_reject_constant)
        except RecursionError:
            skipped.append(f"{path.name}:{number}: nested too deeply")
            continue
        except ValueError as exc:  # JSONDecodeError, or a NaN / Infinity literal
            skipped.append(f"{path.name}:{number}: not valid JSON ({getattr(exc, 'msg', exc)})")
            continue
        try:
            if not isinstance(row, dict):
                raise TypeError("a row must be a JSON object")
            items.append(parse(row, number))
        except (ValueError, KeyError, TypeError) as exc:
            skipped.append(f"{path.name}:{number}: {first_line(exc) if exc.args else 'malformed row'}")
    return items, skipped


def _problem(row: dict, number: int) -> Problem:
    question = row.get("question", row.get("problem"))
    answer = row.get("answer", row.get("extracted_groundtruth"))
    if not isinstance(question, str) or not question.strip() or answer is None:
        raise ValueError("needs 'question' or 'problem', and 'answer'")
    return Problem(str(row.get("unique_id", row.get("id", number))), question.strip(), gold_answer(str(answer)))


def read_problems(path: str | Path, limit: int | None = None) -> tuple[list[Problem], list[str]]:
    """(problems, one message per skipped row) from a JSONL file."""
    return read_jsonl(path, _problem, limit)


def read_rows(path: str | Path, start: int, stop: int) -> list[dict]:
    """Rows [start, stop) of a JSONL file (e.g. GSM8K's train split, "gsm8k-train") as they are."""
    path = data_path(str(path))
    try:
        lines = jsonl_lines(path.read_text(encoding="utf-8"))[start:stop]
        rows = [json.loads(line, parse_constant=_reject_constant) for line in lines if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(f"cannot read rows from {str(path)!r}: {type(exc).__name__}") from None
    if not all(isinstance(row, dict) for row in rows):
        raise UserError(f"cannot read rows from {str(path)!r}: a row is not a JSON object")
    return rows
