"""Errors a user can cause and fix: ``main`` prints them as one paragraph, no traceback."""

from lightning.fabric.utilities.exceptions import MisconfigurationException


class UserError(Exception):
    """A problem with the user's input (data, flags, files) that they can fix.

    The message says what was wrong and what to do; ``main`` prints it and exits 1.
    """


def user_error(error: BaseException | None) -> BaseException | None:
    """The UserError (or Lightning misconfiguration) behind ``error``, if any: jsonargparse
    wraps what a model's or datamodule's ``__init__`` raises in a ValueError of its own."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (UserError, MisconfigurationException)):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
