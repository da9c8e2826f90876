"""The one exception type that bad input data raises in the trainer package."""
from __future__ import annotations


class DataError(ValueError):
    """Input data is missing, malformed or of the wrong kind.

    Raised for an empty or missing data folder, audio at the wrong sample rate, stereo,
    non-finite samples, corrupt or truncated files, manifests and label files that do not
    match, and an unusable speech engine. The message names the file or folder at fault
    and, where there is one, the fix; a command-line front end prints it as one line and
    exits with status 2.
    """


def check_seed(seed) -> None:
    """A corpus seed is a non-negative integer (numpy's seed sequences refuse the rest)."""
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
