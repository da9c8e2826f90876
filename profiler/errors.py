"""Errors a user can fix: the CLI prints them as one line and exits with status 2."""


class UsageError(Exception):
    """Bad argument or input (unknown model, malformed file, wrong shape...)."""
