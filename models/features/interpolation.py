"""Missing EEG electrodes, computed from the present ones (spherical splines, MNE).

A cap rarely has every electrode a model was trained on. Up to a share of them
(default 25 %) can be interpolated with MNE's spherical-spline interpolation
(Perrin et al., 1989) on the standard 10-05 positions. The interpolation is
linear, so it is one matrix ``[missing, present]``, computed once per session
with MNE's public API (``interpolate_bads`` applied to the identity) and then
applied to every window as a matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from helo.models.errors import HeloError

MAX_INTERPOLATED_SHARE = 0.25
# The standard 10-05 positions (MNE 1.12 renamed "standard_1005" to "colin27_1005").
POSITIONS = ("colin27_1005", "standard_1005")


class InterpolationError(HeloError):
    """Channels that cannot be interpolated."""


def spline_matrix(present: Sequence[str], missing: Sequence[str]) -> np.ndarray:
    """``[len(missing), len(present)]``: missing = matrix @ present (per sample)."""
    return _spline_matrix(tuple(present), tuple(missing)).copy()


@lru_cache(maxsize=16)
def _spline_matrix(present: tuple[str, ...], missing: tuple[str, ...]) -> np.ndarray:
    import mne

    builtin = mne.channels.get_builtin_montages()
    montage = mne.channels.make_standard_montage(next(p for p in POSITIONS if p in builtin))
    known = {name.lower() for name in montage.ch_names}
    unplaced = [name for name in (*present, *missing) if name.lower() not in known]
    if unplaced:
        raise InterpolationError(
            f"no standard 10-05 position for channel(s) {unplaced}: cannot interpolate"
        )
    names = [*present, *missing]
    info = mne.create_info(names, sfreq=100.0, ch_types="eeg", verbose="error")
    data = np.zeros((len(names), len(present)))
    data[: len(present)] = np.eye(len(present))
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_montage(montage, match_case=False, verbose="error")
    raw.info["bads"] = list(missing)
    raw.interpolate_bads(reset_bads=True, verbose="error")
    return np.ascontiguousarray(raw.get_data()[len(present) :])
