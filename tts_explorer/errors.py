"""One exception type for input the user can fix; the CLI and UI show its one-line message."""


class UserError(ValueError):
    """Bad input (a parameter, a path, a file): shown as one line, never as a traceback."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when it has none), safe to
    show anywhere: text UTF-8 cannot encode (a lone surrogate from the input) is replaced."""
    text = str(exc).strip()
    line = (text.splitlines()[0] if text else type(exc).__name__)[:limit]
    return line.encode("utf-8", "replace").decode("utf-8")
