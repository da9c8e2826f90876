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
