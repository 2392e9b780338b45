"""Building blocks for reading untrusted files with pydantic: strict models, capped text
that UTF-8 can encode, and one-line messages from validation errors."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

MAX_COUNT = 10**15  # tokens or parameters: far above any real run, far below what float arithmetic overflows on
MAX_FLOPS = 1e30


def valid_unicode(text: str) -> str:
    """Text that UTF-8 can encode (json.loads lets lone surrogates such as "\\ud800" through)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (a lone surrogate)") from None
    return text


def Text(max_length: int):  # noqa: N802 (a type, built for a cap)
    return Annotated[str, Field(max_length=max_length), AfterValidator(valid_unicode)]


class Strict(BaseModel):
    """No coercion (no number where text is meant, no bool for an integer), no NaN, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


def one_line(exc: ValidationError, where=lambda loc: ".".join(str(p) for p in loc) or "the document") -> str:
    """The first problem of a validation error as 'where: what', with a count of the others."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where(tuple(first['loc']))}: {message}{more}"
