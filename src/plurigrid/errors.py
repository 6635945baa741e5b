"""The one base of every error a user can cause, so that callers catch user errors in one place.

Each message is one line for a person: what, where (file, field path, flag) and what was expected.
Anything else that escapes Plurigrid is a defect (the CLI reports it as an internal error).
"""

from __future__ import annotations


class PlurigridError(Exception):
    """A problem with the input a user gave (a spec, file, module, message, flag or argument)."""


class UsageError(PlurigridError, ValueError):
    """A bad argument or flag: its name, what it was and what was expected."""
