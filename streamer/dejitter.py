"""De-jittering of a regular stream's timestamps that knows about gaps.

Senders stamp samples when a chunk leaves the device, so timestamps of a regular
stream scatter around the true sampling times. A straight line through the
recent timestamps (least squares over sample index, with exponential forgetting,
half-life ``halflife_s``) recovers them. liblsl's own de-jitter does the same but
cannot tell a gap or a clock jump from jitter and smears them over many seconds,
which also hides them from the health figures; here a chunk whose first
timestamp departs from the line by more than 2.5 sample periods plus eight times
the typical jitter starts a new segment, and the departure is
reported as a gap (positive) or a backward jump (negative). Irregular streams are
not de-jittered (their frame times are real).
"""

from __future__ import annotations

import numpy as np


class Dejitter:
    """Smooths the timestamps of one regular stream, chunk by chunk."""

    def __init__(self, srate_hz: float, halflife_s: float = 30.0, min_break_s: float = 0.0):
        if not srate_hz > 0:
            raise ValueError("de-jittering needs a regular stream (nominal rate > 0)")
        self.period = 1.0 / srate_hz
        self.keep = 0.5 ** (1.0 / (halflife_s * srate_hz))  # weight kept per new sample
        self.min_break_s = min_break_s
        self.jitter_s = 0.0  # running typical |raw - line|
        self._reset()

    def _reset(self) -> None:
        self.n = 0  # samples in the current segment
        self._origin_y = 0.0
        self._s0 = self._s1 = self._s2 = self._t1 = self._t2 = 0.0

    def _line(self, x: np.ndarray) -> np.ndarray:
        """The fitted timestamps at segment indices ``x`` (falls back to the nominal rate)."""
        x0 = float(self.n)  # accumulators are centred on the current index
        det = self._s0 * self._s2 - self._s1**2
        if self._s0 < 2 or det <= 1e-9 * max(self._s0 * self._s2, 1e-300):
            slope = self.period
            intercept = (self._t1 - slope * self._s1) / self._s0 if self._s0 > 0 else 0.0
        else:
            slope = (self._s0 * self._t2 - self._s1 * self._t1) / det
            intercept = (self._t1 - slope * self._s1) / self._s0
        return self._origin_y + intercept + slope * (x - x0)

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """Smoothed timestamps of the chunk ``raw``, and the breaks found before and
        inside it (seconds: positive for a gap, negative for a backward jump)."""
        raw = np.asarray(raw, dtype=np.float64)
        if len(raw) == 0:
            return raw, []
        limit = self._limit()
        # A pulled chunk can hold several sent chunks: split it where the steps break.
        steps = np.diff(raw) - self.period
        cuts = np.flatnonzero(np.abs(steps) > limit) + 1
        breaks: list[float] = []
        out = []
        for part in np.split(raw, cuts):
            smoothed, jump = self._segment(part)
            out.append(smoothed)
            if jump is not None:
                breaks.append(jump)
        return np.concatenate(out), breaks

    def _limit(self) -> float:
        return max(2.5 * self.period + 8.0 * self.jitter_s, self.min_break_s)

    def _segment(self, raw: np.ndarray) -> tuple[np.ndarray, float | None]:
        k = len(raw)
        jump = None
        if self.n > 0:
            expected = float(self._line(np.array([float(self.n)]))[0])
            departure = raw[0] - expected
            if abs(departure) > self._limit():
                jump = departure
                self._reset()
        self._update(raw)
        smoothed = self._line(np.arange(self.n - k, self.n, dtype=np.float64))
        deviation = float(np.mean(np.abs(raw - smoothed)))
        self.jitter_s = 0.95 * self.jitter_s + 0.05 * deviation if self.n > k else deviation
        return smoothed, jump

    def _update(self, raw: np.ndarray) -> None:
        k = len(raw)
        # Re-centre: x on the new current index, y on this chunk's first timestamp.
        new_origin = float(raw[0])
        shift_y = new_origin - self._origin_y
        self._t2 -= shift_y * self._s1
        self._t1 -= shift_y * self._s0
        self._origin_y = new_origin
        decay = self.keep**k
        x = np.arange(k, dtype=np.float64)  # indices n .. n+k-1, relative to n
        y = raw - new_origin
        w = self.keep ** (k - 1 - x)
        # Old accumulators are centred on n; keep them there for now, then shift to n + k.
        s0 = decay * self._s0 + w.sum()
        s1 = decay * self._s1 + (w * x).sum()
        s2 = decay * self._s2 + (w * x * x).sum()
        t1 = decay * self._t1 + (w * y).sum()
        t2 = decay * self._t2 + (w * x * y).sum()
        c = float(k)  # centre on the next index: x' = x - k
        self._s0, self._s1, self._s2 = s0, s1 - c * s0, s2 - 2 * c * s1 + c * c * s0
        self._t1, self._t2 = t1, t2 - c * t1
        self.n += k
