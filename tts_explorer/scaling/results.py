"""Reading eval results from an untrusted file (the Scaling tab's upload): each row checked
against a schema, bad rows counted and skipped, the file and the row count capped."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..data import read_jsonl
from ..errors import UserError
from ..schema import MAX_COUNT, MAX_FLOPS, Text, one_line

MAX_ROWS = 50_000


class ComputeRow(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
    total_flops: float = Field(default=0.0, ge=0.0, le=MAX_FLOPS)
    generated_tokens: int = Field(ge=0, le=MAX_COUNT)
    scorer_tokens: int = Field(default=0, ge=0, le=MAX_COUNT)


class ResultRow(BaseModel):
    """The fields of an eval row that the plots and tables read (others are kept as they are)."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
    id: Text(200) | int
    model: Text(200)
    n_params: int = Field(default=0, ge=0, le=MAX_COUNT)
    strategy: Text(40)
    n: int = Field(ge=1, le=100_000)
    scorer: Text(300) | None = None
    aggregation: Text(20) | None = None
    selection: Text(20) | None = None
    correct: bool
    covered: bool = False
    compute: ComputeRow
    bin: Literal["easy", "medium", "hard"] | None = None
    pass1: float | None = Field(default=None, ge=0.0, le=1.0)


def _row(raw: dict, number: int) -> dict:
    try:
        return ResultRow.model_validate(raw).model_dump()
    except ValidationError as exc:
        raise ValueError(one_line(exc)) from None


def read_results(path: str) -> tuple[list[dict], list[str]]:
    """(checked rows, one message per skipped row); UserError when none is usable."""
    rows, skipped = read_jsonl(path, _row, limit=MAX_ROWS)
    if not rows:
        first = f" (first: {skipped[0]})" if skipped else ""
        raise UserError(f"no usable result rows: each needs model, strategy, n, correct and compute{first}")
    return rows, skipped
