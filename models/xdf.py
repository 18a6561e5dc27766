"""Reading XDF recordings: the one reader behind replay and training from recordings.

pyxdf does the work (clock synchronisation, clock resets, de-jittering); the numeric
samples go to memory-mapped temporary files as pyxdf reads them
(:mod:`helo.models.sample_file`), so a long recording does not need its size in memory.
Streams whose
timestamps are real sample times (irregular, or declaring ``can_drop_samples``, such as
a webcam's) are read without de-jittering, so replay and training see the same times the
live reader did. A damaged file is read as far as it goes: pyxdf skips unreadable chunks
and logs a traceback for each; here that becomes one line naming the file and the byte.
"""

from __future__ import annotations

import gzip
import itertools
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyxdf

from helo.models.errors import DatasetError
from helo.models.sample_file import ChunkSpill, SampleFile
from helo.models.streams import CLOCK_JUMP_S, StreamDescription, describe_xdf

log = logging.getLogger(__name__)

# pyxdf's de-jitter fits one line per segment and starts a new segment only at a gap of
# more than max(1 s, 500 samples): at 32 Hz a 15-s dropout of a GSR sensor vanished,
# the samples after it moved back by up to 15 s into the gap (a live session, whose
# de-jitter knows gaps, saw the stream go stale). A gap of more than half a second (or
# two sample periods at low rates) starts a segment here; chunked senders' jitter is
# far below that.
JITTER_BREAK_S = 0.5
JITTER_BREAK_SAMPLES = 2


@dataclass
class RecordedStream:
    """One stream of a recording: header, LSL times (sorted) and samples ``[n, C]``
    (float64, or objects for a string stream)."""

    description: StreamDescription
    times: np.ndarray
    samples: np.ndarray
    info: dict[str, Any]
    backing: SampleFile | None = None  # the file ``samples`` is mapped onto, if any

    def release_before(self, row: int) -> None:
        """The samples before ``row`` are not needed for a while: give their memory back."""
        if self.backing is not None:
            self.backing.release(row)


def read_recording(path: str | Path) -> list[RecordedStream]:
    """Every stream of an XDF file; a missing or unreadable file is a one-line
    :class:`DatasetError`."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    spill = ChunkSpill()
    streams = _load(path, dejitter=True, spill=spill)
    if spill.error is not None:
        raise DatasetError(
            f"{path}: cannot write its samples to the temporary directory "
            f"{tempfile.gettempdir()} ({spill.error.strerror or spill.error}); set TMPDIR "
            "to a disk with room"
        )
    descriptions = [describe_xdf(s["info"]) for s in streams]
    redo = [
        int(s["info"]["stream_id"])
        for s, d in zip(streams, descriptions, strict=True)
        if d.can_drop_samples and d.srate_hz > 0  # irregular ones were not de-jittered
    ]
    if redo:  # their frame times are real: read those again without de-jittering
        # the samples are those of the first reading (kept: store=False), and its damage
        # was said then: once is enough
        again = _load(path, dejitter=False, select=redo, report=False, spill=ChunkSpill(False))
        raw = {int(s["info"]["stream_id"]): s for s in again}
        streams = [raw.get(int(s["info"]["stream_id"]), s) for s in streams]
    recorded = [_recorded(s, d, spill) for s, d in zip(streams, descriptions, strict=True)]
    _repair_clock_jumps(path, recorded)
    for stream in recorded:
        if len(stream.times) > 1 and np.any(np.diff(stream.times) < 0):
            order = np.argsort(stream.times, kind="stable")
            stream.times, stream.samples = stream.times[order], stream.samples[order]
            stream.backing = None  # the reordered samples are a copy in memory
    return recorded


def _recorded(
    stream: dict[str, Any], description: StreamDescription, spill: ChunkSpill
) -> RecordedStream:
    times = np.asarray(stream["time_stamps"], dtype=np.float64)
    backing = spill.files.get(int(stream["info"]["stream_id"]))
    if backing is not None:  # pyxdf may have dropped samples past the footer's count
        samples = backing.array(len(times))
        return RecordedStream(description, times, samples, stream["info"], backing)
    dtype = np.float64 if description.numeric else object
    samples = np.asarray(stream["time_series"], dtype=dtype).reshape(
        len(times), description.n_channels
    )
    return RecordedStream(description, times, samples, stream["info"])


def _repair_clock_jumps(path: Path, streams: list[RecordedStream]) -> None:
    """A regular stream whose timestamps jump by more than ``CLOCK_JUMP_S`` onto a time
    outside the rest of the recording (or back in time) had its sender's clock jump
    (App-LabRecorder #129): the samples after the jump are placed right after those
    before it, as the live reader re-anchors them, and it is said. A jump that lands
    within the recording is a gap and stays."""
    spans = [
        (float(s.times.min()), float(s.times.max()))
        for s in streams
        if s.description.numeric and len(s.times) > 1
    ]
    for stream in streams:
        d = stream.description
        if not d.numeric or d.srate_hz <= 0 or len(stream.times) < 2:
            continue
        steps = np.diff(stream.times)
        breaks = np.flatnonzero(np.abs(steps) > CLOCK_JUMP_S)
        if not len(breaks):
            continue
        own = (float(stream.times.min()), float(stream.times.max()))
        others = [span for span in spans if span != own] or [own]
        lo, hi = min(a for a, _ in others), max(b for _, b in others)
        bounds = [0, *(breaks + 1).tolist(), len(stream.times)]
        times = stream.times.copy()
        for start, stop in itertools.pairwise(bounds[1:]):  # every segment after the first
            first, last = stream.times[start], stream.times[stop - 1]
            outside = last < lo - CLOCK_JUMP_S or first > hi + CLOCK_JUMP_S
            if outside or stream.times[start] < stream.times[start - 1]:
                shift = times[start - 1] + 1.0 / d.srate_hz - first
                times[start:stop] += shift
                log.warning(
                    "%s: stream %r: timestamps jump %+.1f s after %.1f s (the sender's "
                    "clock); the samples after it are placed right after those before",
                    path,
                    d.name,
                    -shift,
                    times[start - 1] - times[0],
                )
        stream.times = times


def _load(
    path: Path,
    dejitter: bool,
    select: list[int] | None = None,
    report: bool = True,
    spill: ChunkSpill | None = None,
) -> list[dict[str, Any]]:
    with _opened(path) as handle, _damage_reported(path, handle, report):
        try:
            streams, _header = pyxdf.load_xdf(
                handle,
                select_streams=select,
                synchronize_clocks=True,
                dejitter_timestamps=dejitter,
                jitter_break_threshold_seconds=JITTER_BREAK_S,
                jitter_break_threshold_samples=JITTER_BREAK_SAMPLES,
                on_chunk=spill,
            )
        except Exception as exc:  # pyxdf raises many kinds for a bad or truncated file
            raise DatasetError(
                f"{path}: not a readable XDF file ({type(exc).__name__}: {exc})"
            ) from None
    return list(streams)


@contextmanager
def _opened(path: Path) -> Iterator[IO[bytes]]:
    """The file, opened here so that a damaged chunk can be located by its byte."""
    compressed = path.suffix == ".xdfz" or path.suffixes[-2:] == [".xdf", ".gz"]
    try:
        opened = gzip.open(path, "rb") if compressed else path.open("rb")  # noqa: SIM115 (closed below)
        handle = cast(IO[bytes], opened)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        yield handle


class _DamageFilter(logging.Filter):
    """Keeps pyxdf's own lines (with their tracebacks) off the terminal; notes where the
    errors were."""

    def __init__(self, handle: IO[bytes]):
        super().__init__()
        self.handle = handle
        self.damage: list[tuple[int, str]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            try:
                where = self.handle.tell()
            except (OSError, ValueError):
                where = -1
            self.damage.append((where, record.getMessage().splitlines()[0]))
        else:
            log.debug("pyxdf: %s", record.getMessage())
        return False


@contextmanager
def _damage_reported(path: Path, handle: IO[bytes], report: bool) -> Iterator[None]:
    pyxdf_log = logging.getLogger("pyxdf.pyxdf")
    damage = _DamageFilter(handle)
    pyxdf_log.addFilter(damage)
    try:
        yield
    finally:
        pyxdf_log.removeFilter(damage)
    if damage.damage and report:
        where, what = damage.damage[0]
        more = f" and {len(damage.damage) - 1} more place(s)" if len(damage.damage) > 1 else ""
        log.warning(
            "%s: unreadable data near byte %d%s (%s); skipped to the next readable chunk",
            path,
            where,
            more,
            what.rstrip("."),
        )
