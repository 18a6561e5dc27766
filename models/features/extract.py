"""Windows of raw samples -> normalised feature arrays, for live, replay and training.

This is the one place that turns samples into model input. It checks each window
(channel count, enough samples, NaN/Inf, face frames) and either computes the
spec's feature or masks the modality with a reason; a masked modality's values
are NaN so that nothing can use them by accident. Everything is vectorised over
windows: live inference passes one window, training passes thousands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from helo.models.errors import FeatureError
from helo.models.features.eeg import differential_entropy
from helo.models.features.face import blendshape_statistics, face_frame_valid
from helo.models.features.overlap import all_finite
from helo.models.features.spec import FeatureSpec, ModalitySpec
from helo.models.features.stats import gsr_statistics, ppg_statistics

Extractor = Callable[[np.ndarray, float, dict[str, Any]], np.ndarray]

EXTRACTORS: dict[str, Extractor] = {
    "eeg_de": differential_entropy,
    "gsr_stats": gsr_statistics,
    "ppg_stats": ppg_statistics,
    "face_stats": blendshape_statistics,
}


@dataclass
class FeatureBatch:
    """Features of W windows: per modality ``[W, *feature_shape]`` float32 (NaN where
    absent), which modalities are present per window, and why absent ones are."""

    values: dict[str, np.ndarray]
    present: np.ndarray  # [W, M] bool, columns in spec order
    reasons: dict[str, list[str | None]]

    def __len__(self) -> int:
        return int(self.present.shape[0])


def extract_modality(
    mod: ModalitySpec, windows: np.ndarray, normalize: bool = True
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Feature of one modality for ``[W, T, C]`` windows (channels in spec order).

    Returns ``(values [W, *feature_shape] float32, present [W] bool, reasons)``.
    A window with too few samples, NaN/Inf (physiological), or too few face frames
    is masked with a reason. A wrong channel count is a configuration error and
    raises :class:`FeatureError`.
    """
    if mod.feature not in EXTRACTORS:
        raise FeatureError(
            f"modality {mod.name!r}: its feature {mod.feature!r} is precomputed and cannot be "
            "computed from a stream"
        )
    windows = np.asarray(windows)
    if windows.ndim == 2:
        windows = windows[None]
    if windows.ndim != 3:
        raise FeatureError(f"modality {mod.name!r}: windows must be [W, T, C], got {windows.shape}")
    n_win, n_times, n_chan = windows.shape
    if n_chan != len(mod.channels):
        raise FeatureError(
            f"modality {mod.name!r}: window has {n_chan} channel(s), the model needs "
            f"{len(mod.channels)} ({_short(mod.channels)})"
        )
    values = np.full((n_win, *mod.feature_shape), np.nan, dtype=np.float32)
    present = np.zeros(n_win, dtype=bool)
    reasons: list[str | None] = [None] * n_win
    need = int(np.ceil(mod.min_valid_fraction * mod.expected_samples))
    if n_times < max(need, 4):
        reason = f"{mod.name}: {n_times} of {mod.expected_samples} samples in the window"
        return values, present, [reason] * n_win

    if mod.feature == "face_stats":
        n_face = face_frame_valid(windows).sum(axis=1)
        ok = n_face >= need
        for w in np.flatnonzero(~ok):
            reasons[w] = f"{mod.name}: face in {n_face[w]} of {mod.expected_samples} frames"
    else:
        ok = all_finite(windows)
        for w in np.flatnonzero(~ok):
            reasons[w] = f"{mod.name}: NaN/Inf in the window"
    if ok.any():
        with np.errstate(all="ignore"):  # a degenerate window is caught just below
            usable = windows if ok.all() else windows[ok]  # (all: overlapping views stay so)
            feats = EXTRACTORS[mod.feature](usable, mod.srate_hz, mod.params)
            feats = feats.reshape(-1, *mod.feature_shape)
            if normalize:
                feats = normalize_values(mod, feats)
        finite = np.isfinite(feats.reshape(len(feats), -1)).all(axis=1)
        rows = np.flatnonzero(ok)
        for w in rows[~finite]:
            reasons[w] = f"{mod.name}: features not finite (a degenerate window)"
        values[rows[finite]] = feats[finite]
        ok[rows[~finite]] = False
    present[:] = ok
    return values, present, reasons


def extract(
    spec: FeatureSpec, windows: Mapping[str, np.ndarray | None], normalize: bool = True
) -> FeatureBatch:
    """Features of every modality of ``spec`` from ``windows`` (name -> ``[W, T, C]``).

    A modality missing from ``windows`` (or ``None``) is masked for all windows.
    """
    n_win = _count_windows(windows)
    values: dict[str, np.ndarray] = {}
    reasons: dict[str, list[str | None]] = {}
    present = np.zeros((n_win, len(spec.modalities)), dtype=bool)
    for m, mod in enumerate(spec.modalities):
        data = windows.get(mod.name)
        if data is None:
            values[mod.name] = np.full((n_win, *mod.feature_shape), np.nan, dtype=np.float32)
            reasons[mod.name] = [f"{mod.name}: no stream"] * n_win
            continue
        if normalize and not mod.is_normalized:
            raise FeatureError(f"modality {mod.name!r}: the spec has no normalisation statistics")
        values[mod.name], present[:, m], reasons[mod.name] = extract_modality(mod, data, normalize)
    return FeatureBatch(values=values, present=present, reasons=reasons)


def normalize_values(mod: ModalitySpec, feats: np.ndarray) -> np.ndarray:
    """z-score features with the statistics the spec carries (fitted on training data)."""
    if not mod.is_normalized:
        raise FeatureError(f"modality {mod.name!r}: the spec has no normalisation statistics")
    mean, std = mod.norm_arrays
    return ((feats - mean) / std).astype(np.float32)


def fit_normalization(
    spec: FeatureSpec, values: Mapping[str, np.ndarray], present: np.ndarray
) -> FeatureSpec:
    """The spec with z-score statistics fitted on the present windows of ``values``."""
    stats = {}
    for m, mod in enumerate(spec.modalities):
        rows = np.asarray(values[mod.name])[present[:, m]].reshape(-1, mod.n_features)
        if len(rows) < 2:
            raise FeatureError(
                f"modality {mod.name!r}: {len(rows)} training window(s) with data; "
                "need 2 or more to fit normalisation"
            )
        rows = rows.astype(np.float64)
        std = rows.std(axis=0)
        # A constant feature keeps unit scale rather than dividing by ~0.
        std = np.where(std > 1e-8 * (1.0 + np.abs(rows.mean(axis=0))), std, 1.0)
        stats[mod.name] = (rows.mean(axis=0), std)
    return spec.with_normalization(stats)


def _count_windows(windows: Mapping[str, np.ndarray | None]) -> int:
    counts = {
        name: (1 if np.ndim(w) == 2 else len(w)) for name, w in windows.items() if w is not None
    }
    if not counts:
        raise FeatureError("no modality has data for these windows")
    if len(set(counts.values())) != 1:
        raise FeatureError(f"modalities hold different numbers of windows: {counts}")
    return next(iter(counts.values()))


def _short(names: tuple[str, ...] | list[str], n: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")
