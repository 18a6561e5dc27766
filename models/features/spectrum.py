"""One-sided power spectral density of windows, shared by the EEG and GSR features.

A Hann-windowed periodogram over the whole window (``scipy.fft``): at 5 s windows
it resolves 0.2 Hz, which the band sums and spectrum statistics need, and it is
one FFT per channel, several times cheaper than Welch's segment averaging (the
band sums average over many bins instead).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
from scipy.signal import get_window

from helo.models.features.overlap import strip_of, windows_of


@lru_cache(maxsize=32)
def _hann(n_times: int) -> tuple[np.ndarray, float]:
    win = get_window("hann", n_times).astype(np.float64)
    return win, float((win**2).sum())


def power_spectral_density(
    x: np.ndarray, srate_hz: float, axis: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """PSD (units^2/Hz) of ``x`` along ``axis`` after removing the mean.

    Returns ``(freqs_hz [F], psd)`` with the frequency axis in place of ``axis``.
    Integrating the PSD over all frequencies (sum * df) gives the signal variance.
    """
    x = np.moveaxis(np.asarray(x), axis, -1)
    n_times = x.shape[-1]
    win, win_power = _hann(n_times)
    spec = scipy.fft.rfft((x - x.mean(axis=-1, keepdims=True)) * win.astype(x.dtype), axis=-1)
    psd = (spec.real**2 + spec.imag**2) / (srate_hz * win_power)
    psd[..., 1 : (n_times + 1) // 2] *= 2.0  # fold negative frequencies (not DC/Nyquist)
    freqs = scipy.fft.rfftfreq(n_times, d=1.0 / srate_hz)
    return freqs, np.moveaxis(psd, -1, axis)


def band_power(x: np.ndarray, srate_hz: float, member: np.ndarray) -> np.ndarray:
    """``psd @ member``: the PSD of ``x [W, T, C]`` (as :func:`power_spectral_density`)
    summed into the bands of ``member [F, B]``, ``[W, C, B]``.

    Only the bins the bands hold are formed, and the windows are laid out time-last
    once (the mean removed and the Hann window applied on the way), so the FFT runs
    over contiguous rows: windows that are views of one strip
    (:mod:`models.features.overlap`) are read once, never copied as they are.
    """
    n_win, n_times, n_chan = x.shape
    rows = np.flatnonzero(member.any(axis=1))
    lo, hi = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
    win, win_power = _hann(n_times)
    dtype = np.result_type(x.dtype, np.float32)
    time_last, mean = _time_last(x)
    centred = np.empty((n_win, n_chan, n_times), dtype=dtype)
    np.subtract(time_last, mean.astype(dtype)[:, :, None], out=centred)
    centred *= win.astype(dtype)
    spec = scipy.fft.rfft(centred, axis=-1)[:, :, lo:hi]
    psd = spec.real**2 + spec.imag**2
    psd *= _fold(n_times, lo, hi).astype(dtype) / (srate_hz * win_power)
    return psd @ member[lo:hi].astype(dtype)


def _time_last(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x [W, T, C]`` as ``[W, C, T]`` and each window's channel means ``[W, C]``.
    Overlapping windows are transposed once as their strip, so that the windows' rows
    are read contiguously. (The means are the windows' own, summed in their dtype as
    before: from the strip's running sums in float64 they moved one window of a group
    replay by 1e-5.)"""
    mean = x.mean(axis=1, dtype=np.result_type(x.dtype, np.float32))
    strip = strip_of(x)
    if strip is None:
        return x.transpose(0, 2, 1), mean
    samples, hop = strip
    rows = np.ascontiguousarray(samples.T)  # [C, S]: each channel's samples contiguous
    return windows_of(rows.T, hop, len(x), x.shape[1]).transpose(0, 2, 1), mean


@lru_cache(maxsize=32)
def _fold(n_times: int, lo: int, hi: int) -> np.ndarray:
    """Bins ``lo..hi-1`` of a one-sided spectrum: 2 where the negative frequencies fold
    in (not DC or Nyquist), 1 elsewhere."""
    bins = np.arange(lo, hi)
    return np.where((bins >= 1) & (bins < (n_times + 1) // 2), 2.0, 1.0)
