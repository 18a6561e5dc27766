"""Face features: statistics of MediaPipe blendshape scores over a window.

The webcam device publishes, per video frame, the 52 blendshape scores of the
MediaPipe Face Landmarker (0..1), NaN when no face was found in the frame. A
window's feature is, per blendshape, the mean, standard deviation and maximum
over the frames that had a face (stat-major order: all means, then all stds,
then all maxima). Frames without a face are left out, never filled in; a window
with too few face frames is masked by :mod:`models.features.extract`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helo.models.features.spec import FACE_STATS

# The 52 blendshape categories of the MediaPipe Face Landmarker, in its output order.
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "eyeLookDownLeft",
    "eyeLookDownRight",
    "eyeLookInLeft",
    "eyeLookInRight",
    "eyeLookOutLeft",
    "eyeLookOutRight",
    "eyeLookUpLeft",
    "eyeLookUpRight",
    "eyeSquintLeft",
    "eyeSquintRight",
    "eyeWideLeft",
    "eyeWideRight",
    "jawForward",
    "jawLeft",
    "jawOpen",
    "jawRight",
    "mouthClose",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthFunnel",
    "mouthLeft",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthPucker",
    "mouthRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "noseSneerLeft",
    "noseSneerRight",
)

# Channels of a face stream (webcam or synthetic device): the 52 scores (NaN when
# no face), whether a face was found (1/0), and head pose in degrees.
FACE_STREAM_CHANNELS: tuple[str, ...] = (
    *BLENDSHAPE_NAMES,
    "facePresent",
    "headYaw",
    "headPitch",
    "headRoll",
)

_REDUCERS = {
    "mean": lambda a: np.mean(a, axis=1),
    "std": lambda a: np.std(a, axis=1),
    "max": lambda a: np.max(a, axis=1),
    "min": lambda a: np.min(a, axis=1),
    "median": lambda a: np.median(a, axis=1),
}


def face_frame_valid(x: np.ndarray) -> np.ndarray:
    """Which frames of ``[W, T, C]`` windows hold a face (all scores finite) -> ``[W, T]``."""
    return np.isfinite(x).all(axis=2)


def blendshape_statistics(x: np.ndarray, srate_hz: float, params: dict[str, Any]) -> np.ndarray:
    """Per-blendshape statistics over the face frames of ``[W, T, C]`` windows -> ``[W, S*C]``.

    Frames without a face are skipped. Each window needs at least one face frame
    (the extractor masks windows with too few before calling this).
    """
    stats = params.get("stats", list(FACE_STATS))
    unknown = [s for s in stats if s not in _REDUCERS]
    if unknown:
        raise ValueError(f"unknown face statistic(s) {unknown}; known: {sorted(_REDUCERS)}")
    valid = face_frame_valid(x)
    if valid.all():
        return np.concatenate([_REDUCERS[s](x) for s in stats], axis=1)
    # Ragged: windows differ in which frames hold a face; reduce each on its own.
    out = np.empty((x.shape[0], len(stats) * x.shape[2]))
    for w in range(x.shape[0]):
        frames = x[w : w + 1, valid[w]]
        out[w] = np.concatenate([_REDUCERS[s](frames)[0] for s in stats])
    return out
