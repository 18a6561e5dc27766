"""Errors a user can cause, reported as one line without a traceback.

Every part of the project raises :class:`HeloError` (or a subclass) for bad input:
a file that is missing, corrupt or of the wrong kind, a stream or field that does
not match what a model needs. The command line prints ``str(error)`` and exits
with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class HeloError(Exception):
    """A problem with the user's input, told in one line that names the culprit."""


class CheckpointError(HeloError):
    """A checkpoint file is missing, corrupt, truncated or does not match its model."""


class FeatureError(HeloError):
    """A window cannot give features: NaN/Inf, too few samples, wrong channels."""


class DatasetError(HeloError):
    """A data-set file or folder is missing or not in the expected format."""
