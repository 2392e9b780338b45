"""One exception type for input the user can fix; the CLI and UI show its one-line message."""


class UserError(ValueError):
    """Bad input (a parameter, a path, a file): shown as one line, never as a traceback."""
