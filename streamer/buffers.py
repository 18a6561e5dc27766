"""A ring buffer of samples with their LSL timestamps, read by time span.

One per stream: preallocated at start (memory is bounded whatever the session
length), written by exactly one reader thread, read by any number of threads
(scheduler, GUI). When full, the newest samples overwrite the oldest ones and the
overwritten samples are counted (``overwritten``); a read asking for a span that
has already left the buffer is counted too (``late_reads``), so a buffer sized
too small for the windows is visible in the stream health, not silent.

Reads return copies: a window is small (seconds of samples) and a copy taken under
the lock can never be torn by a concurrent write.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

ARRIVALS_KEPT = 256  # the last writes whose arrival is kept (the packets' rhythm)


class RingBuffer:
    """``capacity`` samples of ``n_channels`` values plus one float64 timestamp each."""

    def __init__(self, capacity: int, n_channels: int, dtype: np.dtype | type = np.float32):
        if capacity < 1 or n_channels < 1:
            raise ValueError(f"capacity and n_channels must be >= 1, got {capacity}, {n_channels}")
        self.capacity = int(capacity)
        self.n_channels = int(n_channels)
        self._data = np.zeros((self.capacity, self.n_channels), dtype=dtype)
        self._times = np.zeros(self.capacity, dtype=np.float64)
        self._lock = threading.Lock()
        self._written = 0  # samples ever written; the newest is at (written - 1) % capacity
        self.overwritten = 0
        self.late_reads = 0
        self.changed = threading.Condition(threading.Lock())
        # (newest sample time, arrival time) of the last writes a live reader made: when
        # the device's packets come, for the scheduler's choice of window ends
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=ARRIVALS_KEPT)

    # ----------------------------------------------------------------- writing

    def write(self, samples: np.ndarray, times: np.ndarray, arrived: float | None = None) -> None:
        """Append ``samples [n, C]`` stamped ``times [n]`` (the single writer's call);
        ``arrived``: when they came (a live stream's packet), kept in :meth:`arrivals`."""
        n = len(times)
        if n == 0:
            return
        if n > self.capacity:  # only the newest capacity samples can be kept
            self.overwritten += n - self.capacity
            samples, times, n = samples[-self.capacity :], times[-self.capacity :], self.capacity
        with self._lock:
            start = self._written % self.capacity
            first = min(n, self.capacity - start)
            self._data[start : start + first] = samples[:first]
            self._times[start : start + first] = times[:first]
            if first < n:
                self._data[: n - first] = samples[first:]
                self._times[: n - first] = times[first:]
            self.overwritten += max(0, self._written + n - self.capacity) - max(
                0, self._written - self.capacity
            )
            self._written += n
            if arrived is not None:
                self._arrivals.append((float(times[-1]), arrived))
        with self.changed:
            self.changed.notify_all()

    def clear(self, lost: bool = True) -> None:
        """Forget the buffered samples: after the stream's clock jumped backwards (the old
        samples are on another time base; they count as ``lost``), or when a replay seeks
        (they do not). Counters are kept."""
        with self._lock:
            if lost:
                self.overwritten += self.size
            self._written = 0
            self._arrivals.clear()

    def arrivals(self) -> tuple[np.ndarray, np.ndarray]:
        """The newest sample time of each of the last writes, and when each arrived."""
        with self._lock:
            seen = np.array(self._arrivals, dtype=np.float64).reshape(-1, 2)
        return seen[:, 0], seen[:, 1]

    # ----------------------------------------------------------------- reading

    @property
    def size(self) -> int:
        return min(self._written, self.capacity)

    def newest_time(self) -> float | None:
        """Timestamp of the newest sample, or None when empty."""
        with self._lock:
            if self._written == 0:
                return None
            return float(self._times[(self._written - 1) % self.capacity])

    def contents(self, t_end: float) -> tuple[np.ndarray, np.ndarray]:
        """Every buffered sample stamped up to ``t_end`` (copies)."""
        return self.read_span(-np.inf, t_end)

    def _oldest_index(self) -> int:
        return 0 if self._written <= self.capacity else self._written % self.capacity

    def read_span(self, t_start: float, t_end: float) -> tuple[np.ndarray, np.ndarray]:
        """Samples with ``t_start < t <= t_end``: ``(times [n], samples [n, C])`` copies."""
        with self._lock:
            if self._written == 0:
                return np.empty(0), np.empty((0, self.n_channels), self._data.dtype)
            size, start = self.size, self._oldest_index()
            # Binary search over the two physical segments in logical (time) order.
            lo = self._search(t_start, size, start)
            hi = self._search(t_end, size, start)
            if lo == 0 and self._written > self.capacity and self._times[start] > t_start:
                self.late_reads += 1  # part of the span has already been overwritten
            first, last = (start + lo) % self.capacity, (start + hi) % self.capacity
            if hi - lo == 0 or first < last or last == 0:  # one contiguous piece: slice, copy
                stop = first + (hi - lo)
                return self._times[first:stop].copy(), self._data[first:stop].copy()
            idx = (start + np.arange(lo, hi)) % self.capacity  # wraps: gather (a copy)
            return self._times[idx], self._data[idx]

    def rate_hz(self, span_s: float = 5.0) -> float:
        """Samples per second of stream time over the newest ``span_s`` (no copy)."""
        with self._lock:
            size, start = self.size, self._oldest_index()
            if size < 2:
                return 0.0
            newest = float(self._times[(self._written - 1) % self.capacity])
            first = self._search(newest - span_s, size, start)
            if size - first < 2:
                return 0.0
            t_first = float(self._times[(start + first) % self.capacity])
            return (size - first - 1) / (newest - t_first) if newest > t_first else 0.0

    def _search(self, t: float, size: int, start: int) -> int:
        """Number of buffered samples with time <= t (times assumed non-decreasing)."""
        tail = self.capacity - start if self._written > self.capacity else size
        first = self._times[start : start + tail]
        n_first = int(np.searchsorted(first, t, side="right"))
        if n_first < len(first) or size == len(first):
            return n_first
        return len(first) + int(np.searchsorted(self._times[: size - len(first)], t, side="right"))

    def wait_for(self, t: float, timeout_s: float, *, after: bool = False) -> bool:
        """Block until a sample stamped >= ``t`` (``after``: > ``t``) is in the buffer, or
        ``timeout_s`` passes. The check runs under the condition's lock, which the writer
        takes to notify: a sample written between a caller's own look and its wait still
        wakes it (checked outside, such a write was missed and the wait ran until the next
        chunk, 20 ms late in ~1 % of a group's hops)."""

        def arrived() -> bool:
            newest = self.newest_time()
            return newest is not None and (newest > t if after else newest >= t)

        with self.changed:
            return self.changed.wait_for(arrived, timeout_s)
