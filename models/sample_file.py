"""A recording's numeric samples in a temporary file, memory-mapped, not in memory.

pyxdf reads a whole file into memory: the samples of a 2-hour recording of the demo mix
are 600 MB as float64, and its reading needs twice that for a moment (measured: 1.4 GB
resident after loading). Memory that grows with the recording's length is what stops a
lab replaying long sessions, or several at once on a cluster's nodes. So pyxdf still
reads the file (clock synchronisation and de-jittering need every timestamp, and
timestamps are 8 bytes a sample), but through its ``on_chunk`` hook each chunk's numeric
samples go straight into an unlinked temporary file (``TMPDIR``) and pyxdf keeps an empty
placeholder. The stream's samples are then a float64 array mapped onto that file: the
kernel pages in what a reader touches, :meth:`SampleFile.release` hands back the pages a
replay has passed, and the file vanishes with the last reference to it.
"""

from __future__ import annotations

import mmap
import tempfile
from typing import IO, Any

import numpy as np

_DTYPE = np.dtype(np.float64)  # what readers of a recording have always been given
_RELEASE_STEP = 8 << 20  # bytes passed before pages are handed back (a syscall each time)


class SampleFile:
    """One stream's samples ``[n, C]`` float64 in an unlinked temporary file."""

    def __init__(self, n_channels: int):
        self.n_channels = n_channels
        self.rows = 0
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="helo-samples-")  # noqa: SIM115 (lives as long as the mapping)
        self._map: mmap.mmap | None = None
        self._released = 0  # bytes from the start already handed back

    def append(self, values: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(values, dtype=_DTYPE).tobytes())
        self.rows += len(values)

    def array(self, rows: int) -> np.ndarray:
        """The first ``rows`` rows as an array over the file (copy-on-write: writing into it
        changes this process's view, never the file)."""
        self._file.flush()
        if not rows or not self.rows:
            return np.zeros((0, self.n_channels), dtype=_DTYPE)
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_COPY)
        self._file.close()  # the mapping keeps the data until it is gone
        flat = np.frombuffer(self._map, dtype=_DTYPE, count=self.rows * self.n_channels)
        return flat.reshape(self.rows, self.n_channels)[: min(rows, self.rows)]

    def release(self, before_row: int) -> None:
        """Hand back the memory of rows before ``before_row`` (read again from the file if
        they are needed again, e.g. after a seek back)."""
        if self._map is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        end = (before_row * self.n_channels * _DTYPE.itemsize) // mmap.PAGESIZE * mmap.PAGESIZE
        if end < self._released + _RELEASE_STEP and end >= self._released:
            return
        if end > 0:
            self._map.madvise(mmap.MADV_DONTNEED, 0, end)
        self._released = end


class ChunkSpill:
    """pyxdf's ``on_chunk`` hook: a numeric chunk's samples to its stream's
    :class:`SampleFile`, a zero-width placeholder back to pyxdf (string streams, such as
    markers and labels, stay in memory). ``store=False`` drops them: a second reading of
    the same file for other timestamps needs the samples of the first."""

    def __init__(self, store: bool = True) -> None:
        self.store = store
        self.files: dict[int, SampleFile] = {}
        # a failed write (the temporary disk full): pyxdf would take an exception here
        # for a damaged chunk and read on, so it is kept for the reader to raise
        self.error: OSError | None = None

    def __call__(
        self, values: Any, stamps: np.ndarray, header: dict[str, Any], stream_id: int
    ) -> tuple[Any, np.ndarray, dict[str, Any]]:
        if not isinstance(values, np.ndarray) or values.ndim != 2 or not values.shape[1]:
            return values, stamps, header
        if self.store and self.error is None:
            try:
                spill = self.files.get(stream_id)
                if spill is None:
                    spill = self.files[stream_id] = SampleFile(values.shape[1])
                spill.append(values)
            except OSError as exc:
                self.error = exc
        return np.empty((len(values), 0), dtype=_DTYPE), stamps, header
