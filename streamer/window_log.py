"""The raw features of a session's recent windows, in order, per participant: what a
personal model made during the session learns from, and what a baseline span marked on
a label stream (after it ended) recalibrates on.

The inference worker adds every batch it computed (raw, before normalisation); the
log keeps each participant's newest ``max_windows`` (an hour at the default hop, about
20 MB for the demo model's 371 features; a group's log is shorter, see
:data:`GROUP_MAX_WINDOWS`). Normalising them again from the start of the log gives
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
# A group logs windows only for its baselines (personal models are one person's): a
# rest marked on a label stream is a few minutes, and 16 people's hour would be 0.5 GB.
GROUP_MAX_WINDOWS = 2_400  # ten minutes at a hop of 0.25 s

Row = tuple[float, dict[str, np.ndarray], np.ndarray]


class WindowLog:
    def __init__(self, spec: FeatureSpec, max_windows: int = MAX_WINDOWS):
        self.spec = spec
        self.max_windows = max_windows
        self._rows: dict[str, deque[Row]] = {}  # participant ("" alone) -> rows
        self._lock = threading.Lock()
        self.dropped = 0  # windows that fell off the front

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._rows.values())

    def add(
        self,
        t_end: np.ndarray,
        values: Mapping[str, np.ndarray],
        present: np.ndarray,
        participant: str = "",
    ) -> None:
        """Log W windows of one participant (raw features ``values[name] [W, ...]``,
        ``present [W, M]``)."""
        with self._lock:
            rows = self._rows.setdefault(participant, deque(maxlen=self.max_windows))
            for w in range(len(t_end)):
                if len(rows) == rows.maxlen:
                    self.dropped += 1
                row = {name: np.array(v[w], dtype=np.float32) for name, v in values.items()}
                rows.append((float(t_end[w]), row, np.array(present[w], dtype=bool)))

    def first_end(self, participant: str = "") -> float | None:
        """End of the oldest window still logged for ``participant``."""
        with self._lock:
            rows = self._rows.get(participant)
            return rows[0][0] if rows else None

    def snapshot(
        self, t_start: float = -np.inf, t_stop: float = np.inf, participant: str = ""
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """``(t_end [N], values {name: [N, ...]}, present [N, M])`` of the participant's
        logged windows (those ending in ``[t_start, t_stop]``)."""
        with self._lock:
            rows = [r for r in self._rows.get(participant, ()) if t_start <= r[0] <= t_stop]
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
