"""Errors a user can meet and fix."""


class DaiseeError(Exception):
    """A problem with the user's input or environment, not a bug.

    The message is one line that names the cause and the fix; the CLI prints it without a
    traceback and exits non-zero.
    """
