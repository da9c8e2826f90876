"""Errors a user can fix: the CLI prints them as one line and exits with status 2."""


class UsageError(Exception):
    """Bad argument or input (unknown model, malformed file, wrong shape...)."""


class ProfileError(RuntimeError):
    """The model could not be run for profiling (the message says why and what to try)."""
