"""Errors whose message is shown to the user as is, at the command boundary.

Each message says what went wrong and how to fix it; the CLI prints it on one line and exits
non-zero. Anything else that escapes is a bug in diffaccel and keeps its traceback.
"""


class DiffaccelError(Exception):
    """Base class: the message is for the user."""

    exit_code = 2


class UnsupportedRequest(DiffaccelError):
    """The request asks for something diffaccel does not support, or is not a request at all."""


class DatabaseError(DiffaccelError):
    """search_params.json is unreadable or has the wrong shape."""


class MissingDependency(DiffaccelError):
    """An optional dependency (torch, diffusers, an LLM client) is not installed."""


class LLMError(DiffaccelError):
    """The LLM endpoint failed or answered something unusable."""


class ValidationFailed(DiffaccelError):
    """A generated script did not run."""

    exit_code = 1
