"""The one exception CLI commands raise for a problem a person must fix (printed as one line, exit 2)."""


class UserError(Exception):
    """An error a person can fix: printed as one line, exit code 2."""
