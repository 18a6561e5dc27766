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

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def _chunk_weights(
    keep: float, k: int
) -> tuple[np.ndarray, np.ndarray, float, float, float, float]:
    """What a chunk of ``k`` samples adds to the fit that does not depend on its values:
    the weights ``keep ** (k - 1 - x)`` and ``x * weight`` for x = 0..k-1, their sums
    with ``x**2 * weight``, and the decay of what came before (``keep ** k``).

    A reader de-jitters every packet it receives (a group of 8 is 1,600 a second), and
    packets come in a few sizes, so these are computed once per size, not per packet.
    """
    x = np.arange(k, dtype=np.float64)
    w = keep ** (k - 1 - x)
    wx = w * x
    return w, wx, float(w.sum()), float(wx.sum()), float((wx * x).sum()), keep**k


@lru_cache(maxsize=64)
def _offsets(k: int) -> np.ndarray:
    """Indices of a chunk's ``k`` samples relative to the index after it: -k .. -1."""
    return np.arange(-k, 0, dtype=np.float64)


class Dejitter:
    """Smooths the timestamps of one regular stream, chunk by chunk.

    Every packet passes through here on the reader's thread, holding the GIL the
    inference worker needs, so the common case (a packet with no break) costs a dozen
    numpy calls on the packet plus scalar arithmetic on the fit's running sums."""

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

    def _fit(self) -> tuple[float, float]:
        """Slope and intercept of the line at the current index (the accumulators are
        centred there); the nominal rate while too few samples fix a slope."""
        det = self._s0 * self._s2 - self._s1**2
        if self._s0 < 2 or det <= 1e-9 * max(self._s0 * self._s2, 1e-300):
            slope = self.period
            intercept = (self._t1 - slope * self._s1) / self._s0 if self._s0 > 0 else 0.0
        else:
            slope = (self._s0 * self._t2 - self._s1 * self._t1) / det
            intercept = (self._t1 - slope * self._s1) / self._s0
        return slope, intercept

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """Smoothed timestamps of the chunk ``raw``, and the breaks found before and
        inside it (seconds: positive for a gap, negative for a backward jump)."""
        raw = np.asarray(raw, dtype=np.float64)
        if len(raw) == 0:
            return raw, []
        limit = self._limit()
        # A pulled chunk can hold several sent chunks: split it where the steps break.
        steps = np.abs(raw[1:] - raw[:-1] - self.period)
        if not len(steps) or steps.max() <= limit:
            smoothed, jump = self._segment(raw)
            return smoothed, [] if jump is None else [jump]
        cuts = np.flatnonzero(steps > limit) + 1
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
            _, intercept = self._fit()
            departure = float(raw[0]) - (self._origin_y + intercept)
            if abs(departure) > self._limit():
                jump = departure
                self._reset()
        self._update(raw)
        slope, intercept = self._fit()
        smoothed = (self._origin_y + intercept) + slope * _offsets(k)
        deviation = float(np.abs(raw - smoothed).sum()) / k
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
        w, wx, sum_w, sum_wx, sum_wxx, decay = _chunk_weights(self.keep, k)
        y = raw - new_origin  # x = indices n .. n+k-1, relative to n
        # Old accumulators are centred on n; keep them there for now, then shift to n + k.
        s0 = decay * self._s0 + sum_w
        s1 = decay * self._s1 + sum_wx
        s2 = decay * self._s2 + sum_wxx
        t1 = decay * self._t1 + float(w @ y)
        t2 = decay * self._t2 + float(wx @ y)
        c = float(k)  # centre on the next index: x' = x - k
        self._s0, self._s1, self._s2 = s0, s1 - c * s0, s2 - 2 * c * s1 + c * c * s0
        self._t1, self._t2 = t1, t2 - c * t1
        self.n += k
