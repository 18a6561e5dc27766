"""EEG differential entropy (DE) per channel and frequency band.

For a band-passed signal that is close to Gaussian, DE = 0.5 * log(2*pi*e*var);
the band variance is the integral of the power spectral density over the band
(Parseval), so one periodogram per channel (:mod:`models.features.spectrum`)
gives all bands at once instead of one band-pass filter per band. Default bands
are the HeLo/DMER ones: delta 1-4, theta 4-8, alpha 8-14, beta 14-31, gamma
31-49 Hz (``lo <= f < hi``). Units follow the input (microvolts give log uV^2).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from helo.models.features.spec import DEFAULT_EEG_BANDS_HZ
from helo.models.features.spectrum import band_power

# Floor of a band's power, so that a flat (disconnected) channel gives a very low,
# finite DE rather than -inf; real EEG band powers are many orders above it.
_POWER_FLOOR = 1e-12


def differential_entropy(x: np.ndarray, srate_hz: float, params: dict[str, Any]) -> np.ndarray:
    """DE of each channel in each band.

    ``x``: ``[W, T, C]`` windows (time-major, finite values); returns ``[W, C, B]``
    with B bands (``params["bands_hz"]``, default the five HeLo bands).
    """
    bands = tuple(tuple(float(f) for f in b) for b in params.get("bands_hz", DEFAULT_EEG_BANDS_HZ))
    member = _band_matrix(x.shape[1], float(srate_hz), bands)  # [F, B] * df
    power = band_power(x, srate_hz, member)  # [W, C, B]
    return 0.5 * np.log(2.0 * np.pi * np.e * np.maximum(power, _POWER_FLOOR))


@lru_cache(maxsize=32)
def _band_matrix(
    n_times: int, srate_hz: float, bands: tuple[tuple[float, float], ...]
) -> np.ndarray:
    """[F, B] matrix that sums PSD bins of each band times the bin width."""
    freqs = np.fft.rfftfreq(n_times, d=1.0 / srate_hz)
    lo = np.array([b[0] for b in bands])
    hi = np.array([b[1] for b in bands])
    member = (freqs[:, None] >= lo[None, :]) & (freqs[:, None] < hi[None, :])
    empty = [
        list(b) for b, ok in zip(bands, np.any(member, axis=0).tolist(), strict=True) if not ok
    ]
    if empty:
        raise ValueError(
            f"EEG bands {empty} hold no frequency bin of a {n_times}-sample window at "
            f"{srate_hz} Hz; use wider bands or longer windows"
        )
    return member * (srate_hz / n_times)
