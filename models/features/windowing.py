"""Cutting windows from a stream: the one function behind live, replay and training.

A window ending at ``t_end`` holds the stream's samples of ``(t_end - window_s,
t_end]``. The scheduler cuts one window per hop from a ring buffer; training
cuts thousands from a whole recording; both call the functions here with the
same arguments, so a labelled recording's training windows are its replay
windows, sample for sample.

* Regular streams (a nominal rate): the latest ``n_samples`` samples of the span,
  one sample period of timing jitter tolerated at its start (:func:`cut_windows`);
  then, when the stream's rate is not the model's, a polyphase resampling of each
  window to the model's rate (:func:`resample_windows`, scipy's ``resample_poly``:
  deterministic, so live and replay give the same numbers).
* Irregular streams and cameras (whose frames come when they come): the window is
  read on the model's frame grid, each grid time taking the newest frame at or
  before it, if that frame is recent enough; older or absent frames are NaN, i.e.
  frames without a face (:func:`grid_windows`).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from functools import lru_cache

import numpy as np

from helo.models.features.overlap import even_step, take_windows

JITTER_PERIODS = 1.5  # timing jitter tolerated at a window's start, in sample periods
CHUNK_VALUES = 2_000_000  # samples x channels a chunk of windows holds (copies or strip)


def read_from(t_end: float, window_s: float, srate_hz: float) -> float:
    """The earliest time a window ending at ``t_end`` may hold (for a buffer read)."""
    slack = JITTER_PERIODS / srate_hz if srate_hz > 0 else 0.0
    return t_end - window_s - slack


def cut_windows(
    times_s: np.ndarray, samples: np.ndarray, ends_s: np.ndarray, window_s: float, n_samples: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each end time, the samples of ``(end - window_s, end]``.

    Windows are cut by time, not by count: after a gap in a stream, or at its edges,
    a window holds only the samples inside it (the extractor decides whether they
    are enough), never samples from before the window. A stream with more samples
    than expected keeps the latest ``n_samples``; one sample period of timing jitter
    is tolerated at the window start. Yields ``(indices into ends_s, windows [w, T, C])``:
    full windows (``T = n_samples``) in chunks, so a long recording never becomes one
    huge array (evenly spaced ones as read-only views of ``samples``,
    :mod:`models.features.overlap`), then each shorter window on its own. Windows
    without any sample are skipped.
    """
    period = window_s / n_samples
    stop = np.searchsorted(times_s, ends_s + 1e-9, side="right")
    first = np.searchsorted(
        times_s, ends_s - window_s - JITTER_PERIODS * period + 1e-9, side="right"
    )
    inside = np.searchsorted(times_s, ends_s - window_s + 1e-9, side="right")
    # A full window may reach back by the jitter; a short one holds only its own span.
    count = np.where(stop - first >= n_samples, n_samples, stop - inside)
    full = np.flatnonzero(count == n_samples)
    # Evenly spaced windows (a replay's, a recording's) are views of one strip of
    # samples, bounded by the strip's size; others are copies, bounded by theirs.
    hop = even_step(stop[full])
    per_window = hop if 0 < hop < n_samples else n_samples
    chunk = max(1, CHUNK_VALUES // max(1, per_window * samples.shape[1]))
    for start in range(0, len(full), chunk):
        idx = full[start : start + chunk]
        yield idx, take_windows(samples, stop[idx], n_samples)
    for i in np.flatnonzero((count > 0) & (count < n_samples)):
        yield np.array([i]), samples[None, stop[i] - count[i] : stop[i]]


def grid_windows(
    times_s: np.ndarray,
    samples: np.ndarray,
    ends_s: np.ndarray,
    window_s: float,
    rate_hz: float,
    max_age_s: float,
) -> np.ndarray:
    """``[W, round(window_s * rate_hz), C]`` windows on the model's frame grid: grid time
    ``end - window_s + (k + 1) / rate_hz`` takes the newest frame at or before it that
    lies inside the window and is at most ``max_age_s`` old; NaN where none is."""
    n = round(window_s * rate_hz)
    grid = ends_s[:, None] - window_s + (np.arange(n)[None, :] + 1) / rate_hz  # [W, n]
    index = np.searchsorted(times_s, grid + 1e-9, side="right") - 1
    safe = np.clip(index, 0, max(len(times_s) - 1, 0))
    frame_times = times_s[safe] if len(times_s) else np.full(grid.shape, -np.inf)
    fresh = (
        (index >= 0)
        & (grid - frame_times <= max_age_s + 1e-9)
        & (frame_times > (ends_s - window_s)[:, None] + 1e-9)
    )
    out = np.full((len(ends_s), n, samples.shape[1]), np.nan, dtype=samples.dtype)
    if len(times_s):
        out[fresh] = samples[safe[fresh]]
    return out


@lru_cache(maxsize=64)
def resampling_ratio(from_hz: float, to_hz: float) -> tuple[int, int]:
    """``(up, down)`` with ``from_hz * up / down`` = ``to_hz`` (to 1 part in 1,000)."""
    ratio = Fraction(to_hz / from_hz).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def resample_windows(windows: np.ndarray, up: int, down: int) -> np.ndarray:
    """``[W, T, C]`` -> ``[W, ceil(T * up / down), C]`` by polyphase filtering (an
    anti-aliasing FIR, Kaiser window). Each window is extended by its mean at the
    edges, so an amplifier's DC offset does not ring into it (zero padding put a
    step of thousands of µV there: 0.3 of DE in the theta band at 250 Hz; with the
    mean, band powers agree with the model's rate to 0.001, tests/test_adapt.py)."""
    from scipy.signal import resample_poly

    if up == down:
        return windows
    out = resample_poly(windows, up, down, axis=1, padtype="mean")
    return out.astype(windows.dtype, copy=False)
