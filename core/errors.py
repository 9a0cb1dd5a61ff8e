"""Errors a user can cause and fix: ``main`` prints them as one paragraph, no traceback."""


class UserError(Exception):
    """A problem with the user's input (data, flags, files) that they can fix.

    The message says what was wrong and what to do; ``main`` prints it and exits 1.
    """
