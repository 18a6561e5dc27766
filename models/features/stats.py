"""Statistical features of GSR (28) and PPG (27) windows, as in HeLo/DMER.

For the signal ``s``, its first difference and its second difference, seven
statistics each (21): median, mean, standard deviation, minimum, maximum,
min-ratio and max-ratio, where min-ratio (max-ratio) is the share of samples that
are local minima (maxima). Then six statistics of the FFT magnitude spectrum of
the mean-removed signal (DC excluded): mean, median, std, max, dominant
frequency (Hz) and spectral centroid (Hz). GSR adds the mean of its power spectral density
(28 in all); PPG is first band-passed 0.5-8 Hz (zero-phase Butterworth) and has
no PSD term (27). All functions take ``[W, T, 1]`` windows and are vectorised
over windows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import butter, sosfiltfilt

from helo.models.features.spectrum import power_spectral_density

SIGNAL_STATS = ("median", "mean", "std", "min", "max", "min_ratio", "max_ratio")
FFT_STATS = ("fft_mean", "fft_median", "fft_std", "fft_max", "fft_peak_hz", "fft_centroid_hz")


def feature_names(with_psd: bool) -> list[str]:
    """Names of the statistics in output order."""
    names = [f"{part}_{stat}" for part in ("x", "dx", "d2x") for stat in SIGNAL_STATS]
    names += list(FFT_STATS)
    if with_psd:
        names.append("psd_mean")
    return names


def _signal_stats(s: np.ndarray) -> np.ndarray:
    """Seven statistics of ``s`` ([W, T]) -> [W, 7]."""
    inner, before, after = s[:, 1:-1], s[:, :-2], s[:, 2:]
    n = s.shape[1]
    min_ratio = ((inner < before) & (inner <= after)).sum(axis=1) / n
    max_ratio = ((inner > before) & (inner >= after)).sum(axis=1) / n
    return np.stack(
        [
            np.median(s, axis=1),
            s.mean(axis=1),
            s.std(axis=1),
            s.min(axis=1),
            s.max(axis=1),
            min_ratio,
            max_ratio,
        ],
        axis=1,
    )


def _fft_stats(s: np.ndarray, srate_hz: float) -> np.ndarray:
    """Six statistics of the magnitude spectrum of ``s`` ([W, T]) -> [W, 6]."""
    mag = np.abs(np.fft.rfft(s - s.mean(axis=1, keepdims=True), axis=1))[:, 1:]
    freqs = np.fft.rfftfreq(s.shape[1], d=1.0 / srate_hz)[1:]
    total = mag.sum(axis=1)
    centroid = np.divide(mag @ freqs, total, out=np.zeros_like(total), where=total > 0)
    return np.stack(
        [
            mag.mean(axis=1),
            np.median(mag, axis=1),
            mag.std(axis=1),
            mag.max(axis=1),
            freqs[np.argmax(mag, axis=1)],
            centroid,
        ],
        axis=1,
    )


def _common_stats(s: np.ndarray, srate_hz: float) -> np.ndarray:
    d1 = np.diff(s, axis=1)
    d2 = np.diff(d1, axis=1)
    return np.concatenate(
        [_signal_stats(s), _signal_stats(d1), _signal_stats(d2), _fft_stats(s, srate_hz)], axis=1
    )


def gsr_statistics(x: np.ndarray, srate_hz: float, params: dict[str, Any]) -> np.ndarray:
    """28 GSR statistics of ``[W, T, 1]`` windows -> ``[W, 28]``."""
    s = x[:, :, 0].astype(np.float64)
    _, psd = power_spectral_density(s, srate_hz, axis=1)
    return np.concatenate([_common_stats(s, srate_hz), psd.mean(axis=1, keepdims=True)], axis=1)


def ppg_statistics(x: np.ndarray, srate_hz: float, params: dict[str, Any]) -> np.ndarray:
    """27 PPG statistics of ``[W, T, 1]`` windows after a 0.5-8 Hz band-pass -> ``[W, 27]``."""
    lo, hi = params.get("band_hz", (0.5, 8.0))
    hi = min(hi, 0.45 * srate_hz)
    sos = _bandpass(float(lo), float(hi), float(srate_hz))
    s = x[:, :, 0].astype(np.float64)
    padlen = min(s.shape[1] - 1, 3 * (2 * len(sos) + 1))
    s = sosfiltfilt(sos, s, axis=1, padlen=padlen)
    return _common_stats(s, srate_hz)


_SOS_CACHE: dict[tuple[float, float, float], np.ndarray] = {}


def _bandpass(lo: float, hi: float, srate_hz: float) -> np.ndarray:
    """Second-order-section Butterworth band-pass, designed once per rate."""
    key = (lo, hi, srate_hz)
    if key not in _SOS_CACHE:
        _SOS_CACHE[key] = butter(2, [lo, hi], btype="bandpass", fs=srate_hz, output="sos")
    return _SOS_CACHE[key]
