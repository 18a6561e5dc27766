"""Recording streams to XDF with the official LabRecorder bindings (``labrecorder``).

LabRecorder writes the file in its own threads (raw samples, clock offsets,
headers and footers), exactly as the LabRecorder application does, so the files
open in pyxdf, MNE, EEGLAB and the rest. A new recording never overwrites a file:
the name gets ``-2``, ``-3``, ... when taken.

Note on the bindings (1.0.0rc0): ``Recording.stop()`` ends the acquisition but the
file is completed when the object is destroyed, which takes a few seconds
(LabRecorder waits for its offset threads); :meth:`Recorder.stop` does both.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pylsl

from helo.devices.native_output import native_output_to_log
from helo.models.errors import HeloError

log = logging.getLogger(__name__)

DEFAULT_FOLDER = Path("recordings")


def new_recording_path(folder: str | Path = DEFAULT_FOLDER, prefix: str = "session") -> Path:
    """``folder/<prefix>-<YYYYmmdd-HHMMSS>.xdf``, never an existing file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = folder / f"{stem}.xdf"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}.xdf"
        n += 1
    return path


def resolve_by_source_id(source_id: str, timeout_s: float = 5.0) -> pylsl.StreamInfo:
    """The full network description of one stream (what LabRecorder needs to find it)."""
    found = pylsl.resolve_byprop("source_id", source_id, minimum=1, timeout=timeout_s)
    if not found:
        raise HeloError(
            f"stream with source_id {source_id!r} not found on the network within {timeout_s:g} s"
        )
    return found[0]


class Recorder:
    """Records the given streams to ``path`` until :meth:`stop`. The bindings print
    progress to stdout ("Opened the stream ...", "Wrote footer ..."): from start to
    stop those lines go to the debug log, and Python's prints stay on stdout."""

    def __init__(self, path: str | Path, infos: Sequence[pylsl.StreamInfo]):
        if not infos:
            raise HeloError("nothing to record: no streams given")
        self.path = Path(path)
        self.infos = list(infos)
        self._recording = None
        self._chatter = contextlib.ExitStack()

    def start(self) -> Recorder:
        import labrecorder

        if self.path.exists():
            raise HeloError(f"{self.path}: exists; recordings are never overwritten")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._chatter.enter_context(native_output_to_log(1, "labrecorder"))
        try:
            self._recording = labrecorder.Recording(
                str(self.path), [info.as_xml() for info in self.infos]
            )
        except Exception as exc:  # the bindings raise plain RuntimeErrors
            self._chatter.close()
            raise HeloError(f"{self.path}: cannot start recording ({exc})") from None
        names = ", ".join(info.name() for info in self.infos)
        log.info("recording %s to %s", names, self.path)
        return self

    def stop(self, drain_s: float = 1.0) -> Path:
        """Stop and complete the file (blocks a few seconds). ``drain_s`` first lets the
        samples still in flight (the last predictions) reach the recorder."""
        if self._recording is not None:
            recording, self._recording = self._recording, None
            time.sleep(drain_s)
            recording.stop()
            del recording
            gc.collect()
            self._chatter.close()
            log.info(
                "recording closed: %s (%.1f MB)",
                self.path,
                self.path.stat().st_size / 1e6 if self.path.exists() else 0.0,
            )
        return self.path

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
