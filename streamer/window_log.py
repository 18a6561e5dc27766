"""The raw features of a session's recent windows, in order: what a personal model made
during the session learns from.

The inference worker adds every batch it computed (raw, before normalisation); the
log keeps the newest ``max_windows`` (an hour at the default hop, about 20 MB for the
demo model's 371 features). Normalising them again from the start of the log gives
exactly the model input the session computed, as long as the log holds the whole
session.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

import numpy as np

from helo.models.features.spec import FeatureSpec

MAX_WINDOWS = 14_400  # one hour at a hop of 0.25 s


class WindowLog:
    def __init__(self, spec: FeatureSpec, max_windows: int = MAX_WINDOWS):
        self.spec = spec
        self._rows: deque[tuple[float, dict[str, np.ndarray], np.ndarray]] = deque(
            maxlen=max_windows
        )
        self._lock = threading.Lock()
        self.dropped = 0  # windows that fell off the front

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, t_end: np.ndarray, values: Mapping[str, np.ndarray], present: np.ndarray) -> None:
        """Log W windows (raw features ``values[name] [W, ...]``, ``present [W, M]``)."""
        with self._lock:
            for w in range(len(t_end)):
                if len(self._rows) == self._rows.maxlen:
                    self.dropped += 1
                row = {name: np.array(v[w], dtype=np.float32) for name, v in values.items()}
                self._rows.append((float(t_end[w]), row, np.array(present[w], dtype=bool)))

    def snapshot(
        self, t_start: float = -np.inf, t_stop: float = np.inf
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """``(t_end [N], values {name: [N, ...]}, present [N, M])`` of the logged windows
        (those ending in ``[t_start, t_stop]``)."""
        with self._lock:
            rows = [r for r in self._rows if t_start <= r[0] <= t_stop]
        names = self.spec.names
        if not rows:
            empty = {
                m.name: np.empty((0, *m.feature_shape), np.float32) for m in self.spec.modalities
            }
            return np.empty(0), empty, np.empty((0, len(names)), dtype=bool)
        t_end = np.array([r[0] for r in rows])
        values = {name: np.stack([r[1][name] for r in rows]) for name in names}
        present = np.stack([r[2] for r in rows])
        return t_end, values, present
