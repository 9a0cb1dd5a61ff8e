"""Errors a user can cause and fix, and the one way netscope shortens any error to a line.

``main`` prints a :class:`UserError` as one paragraph, with no traceback; the other
helpers here are the only code that walks an exception's cause chain or cuts its message.
"""

import re

from lightning.fabric.utilities.exceptions import MisconfigurationException

#: Terminal control sequences (colours, cursor moves) that some libraries put in messages.
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-_]")


class UserError(Exception):
    """A problem with the user's input (data, flags, files) that they can fix.

    The message says what was wrong and what to do; ``main`` prints it and exits 1.
    """


def causes(error: BaseException | None) -> list[BaseException]:
    """``error`` and the errors it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    while error is not None and all(error is not seen for seen in chain):
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def user_error(error: BaseException | None) -> BaseException | None:
    """The UserError (or Lightning misconfiguration) behind ``error``, if any: jsonargparse
    wraps what a model's or datamodule's ``__init__`` raises in a ValueError of its own."""
    return next((e for e in causes(error)
                 if isinstance(e, (UserError, MisconfigurationException))), None)


def innermost(error: BaseException) -> BaseException:
    """The error at the bottom of ``error``'s cause chain (what was raised first)."""
    return causes(error)[-1]


def plain(text: str) -> str:
    """``text`` without terminal escape codes, on one line."""
    return " ".join(_ESCAPES.sub("", text).split())


def first_line(error: BaseException, default: str | None = None) -> str:
    """The first line of ``error``'s message without escape codes (``default``, else the
    error's type name, when it has none)."""
    lines = [line for line in _ESCAPES.sub("", str(error)).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else (default or type(error).__name__)


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``."""
    text = first_line(error, "")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
