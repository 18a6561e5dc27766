"""Overlapping windows as views of one strip of samples.

Consecutive windows of a replay or a recording overlap by 95 % (5-s windows every
0.25 s), so a batch of them holds each sample twenty times. Cut as copies, every
pass over the batch (unit conversion, glitch checks, stacking, the spectrum) read
and wrote twenty times the data there is. Here a batch of evenly spaced windows is
a read-only ``[W, T, C]`` view whose first stride is the hop: the samples exist once,
a check per sample is done once (:func:`windows_with`), and a feature that can share
work between windows (the EEG spectrum's layout, :mod:`models.features.spectrum`)
finds the strip behind the view (:func:`strip_of`). A window of such a view is an ordinary array;
uneven windows (a live stream's jitter, gaps) are copies, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided


def take_windows(samples: np.ndarray, stops: np.ndarray, n_samples: int) -> np.ndarray:
    """``[W, n_samples, C]`` windows ending (exclusive) at the rows ``stops`` of
    ``samples [S, C]``: a read-only view when the stops are evenly spaced, else a copy."""
    stops = np.asarray(stops, dtype=np.int64)
    hop = n_samples if len(stops) == 1 else even_step(stops)
    if hop > 0:
        return windows_of(samples[int(stops[0]) - n_samples :], hop, len(stops), n_samples)
    return samples[stops[:, None] - n_samples + np.arange(n_samples)[None, :]]


def windows_of(strip: np.ndarray, hop: int, n_windows: int, n_times: int) -> np.ndarray:
    """``[n_windows, n_times, C]`` read-only view: window ``w`` is
    ``strip[w * hop : w * hop + n_times]``."""
    if len(strip) < (n_windows - 1) * hop + n_times:
        raise ValueError(f"a strip of {len(strip)} samples holds fewer than {n_windows} windows")
    return as_strided(
        strip,
        shape=(n_windows, n_times, strip.shape[1]),
        strides=(hop * strip.strides[0], *strip.strides),
        writeable=False,
    )


def even_step(stops: np.ndarray) -> int:
    """The common (positive) step of ``stops``, or 0 when they are not evenly spaced."""
    if len(stops) < 2:
        return 0
    steps = np.diff(stops)
    return int(steps[0]) if steps[0] > 0 and (steps == steps[0]).all() else 0


def strip_of(windows: np.ndarray) -> tuple[np.ndarray, int] | None:
    """``(strip [S, C], hop)`` behind ``windows [W, T, C]`` when they are overlapping
    views of one strip (window ``w`` is ``strip[w * hop : w * hop + T]``); else None."""
    if windows.ndim != 3 or len(windows) < 2:
        return None
    step, row = windows.strides[0], windows.strides[1]
    if row <= 0 or step <= 0 or step % row:
        return None
    hop = step // row
    n_times = windows.shape[1]
    if hop >= n_times:
        return None
    length = (len(windows) - 1) * hop + n_times
    return as_strided(
        windows, shape=(length, windows.shape[2]), strides=windows.strides[1:], writeable=False
    ), hop


def windows_with(flags: np.ndarray, hop: int, n_windows: int, n_times: int) -> np.ndarray:
    """Per window, whether any of its samples is flagged: ``flags [S]`` of the strip,
    windows of ``n_times`` samples every ``hop`` -> ``[W]`` bool (one pass over the strip,
    not one per window)."""
    counts = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    starts = np.arange(n_windows) * hop
    return (counts[starts + n_times] - counts[starts]) > 0


def all_finite(windows: np.ndarray) -> np.ndarray:
    """``[W]``: whether every value of each window is finite (per sample of the strip
    when the windows overlap)."""
    strip = strip_of(windows)
    if strip is None:
        return np.isfinite(windows).all(axis=(1, 2))
    samples, hop = strip
    bad = ~np.isfinite(samples).all(axis=1)
    return ~windows_with(bad, hop, len(windows), windows.shape[1])


def restack(windows: Sequence[np.ndarray]) -> np.ndarray:
    """``np.stack(windows)``, without copying when the windows are evenly spaced views of
    one array (the windows of a batch cut from one strip, handed around one by one)."""
    first = windows[0]
    if len(windows) < 2 or not _same_layout(windows):
        return np.stack(windows)
    address = np.array([w.__array_interface__["data"][0] for w in windows], dtype=np.int64)
    step = int(address[1] - address[0])
    row = first.strides[0]
    if step <= 0 or row <= 0 or step % row or not (np.diff(address) == step).all():
        return np.stack(windows)
    return as_strided(
        first, shape=(len(windows), *first.shape), strides=(step, *first.strides), writeable=False
    )


def _same_layout(windows: Sequence[np.ndarray]) -> bool:
    first = windows[0]
    return first.base is not None and all(
        w.base is first.base
        and w.shape == first.shape
        and w.strides == first.strides
        and w.dtype == first.dtype
        for w in windows
    )
