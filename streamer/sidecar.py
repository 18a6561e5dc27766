"""What a recording needs beside its XDF to be replayed exactly: the session's state.

A live session that records writes ``<recording>.helo.json`` next to the XDF file:
the model it ran, the baseline it was given and the participant normalisation
state at the start of the recording (and at its end, for the curious). A replay of
the recording starts from that state, so a participant model's statistics, and so
its predictions, are the live ones (``streamer replay --times recorded``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from helo.models.errors import HeloError

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".helo.json"


def sidecar_path(recording: Path) -> Path:
    return recording.with_name(recording.stem + SIDECAR_SUFFIX)


def write_sidecar(recording: Path, content: dict[str, Any]) -> Path:
    """Write (or rewrite) the sidecar of ``recording``; a failure is said, not raised:
    the recording itself matters more."""
    path = sidecar_path(recording)
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(content, indent=1))
        tmp.replace(path)
    except OSError as exc:
        log.error("%s: cannot write the session state (%s); the recording is kept", path, exc)
    return path


def read_sidecar(recording: Path) -> dict[str, Any] | None:
    """The sidecar of ``recording``, or None when it has none."""
    path = sidecar_path(recording)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HeloError(f"{path}: unreadable session state ({exc})") from None
    if not isinstance(data, dict):
        raise HeloError(f"{path}: session state must be a JSON object")
    return data
