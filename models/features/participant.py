"""Feature normalisation: to the training population, or to the person.

People differ more than emotions do (skin conductance level, EEG band power,
resting face), so a model trained on some people starts from an offset on a new
one. With ``normalisation = "participant"`` in the spec, each feature is z-scored
with the participant's own running statistics, the same way in training, live and
replay:

- causal: a window is standardised with the statistics of its participant's windows
  up to and including it, never later ones; with ``freeze`` (the default) the
  statistics are those of the calibration (the first ``warmup_s`` seconds, or the
  baseline) from then on, a stable reference like a baseline correction;
- weighted by seconds of new signal (``min(time since the previous window,
  window length)``), so that a hop of 0.25 s live and 1 s in training give the
  same statistics for the same person;
- seeded by the population statistics of the training data (the spec's ``norm_mean``
  and ``norm_std``) counted as ``prior_s`` seconds, so the first window already has
  a sensible scale, and by a baseline (a rest period) when there is one;
- robust: a value beyond ``clip`` standard deviations is clipped before it counts
  (a glitch or an electrode pop moves the statistics by at most that much).

A window is *calibrating* while less than ``warmup_s`` seconds (or the session's
baseline, if longer) of its participant were seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from helo.models.errors import FeatureError
from helo.models.features.extract import normalize_values
from helo.models.features.spec import FeatureSpec, ModalitySpec

# A recorded window end can differ from the live one by the recording's clock
# synchronisation (well under a millisecond): the same window within this.
PIN_TOLERANCE_S = 5e-3


class RunningStats:
    """Clipped, weighted running mean and variance of one modality's features
    (West's weighted form of Welford's update), seeded with a prior."""

    def __init__(self, mod: ModalitySpec, prior_weight: float, clip: float):
        if not mod.is_normalized:
            raise FeatureError(f"modality {mod.name!r}: the spec has no population statistics")
        self.mean = np.asarray(mod.norm_mean, dtype=np.float64).copy()
        std = np.asarray(mod.norm_std, dtype=np.float64)
        self.weight = float(prior_weight)
        self.m2 = self.weight * std**2
        self.clip = clip
        self.last_end: float | None = None

    @property
    def std(self) -> np.ndarray:
        std = np.sqrt(self.m2 / self.weight)
        return np.where(std > 1e-8 * (1.0 + np.abs(self.mean)), std, 1.0)

    def update(self, x: np.ndarray, weight: float) -> None:
        """Count one window's features ``x`` [F] with ``weight`` seconds."""
        std = self.std
        x = np.clip(x, self.mean - self.clip * std, self.mean + self.clip * std)
        total = self.weight + weight
        delta = x - self.mean
        self.mean += (weight / total) * delta
        self.m2 += weight * delta * (x - self.mean)
        self.weight = total

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "weight": self.weight,
            "last_end": self.last_end,
        }

    def load(self, data: Mapping[str, Any]) -> None:
        mean = np.asarray(data["mean"], dtype=np.float64)
        if mean.shape != self.mean.shape:
            raise FeatureError(
                f"normalisation state has {mean.size} features, the model needs {self.mean.size}"
            )
        self.mean = mean
        self.m2 = np.asarray(data["m2"], dtype=np.float64)
        self.weight = float(data["weight"])
        last = data.get("last_end")
        self.last_end = None if last is None else float(last)


@dataclass
class NormalisedBatch:
    """Standardised features of some windows and which of them are calibrating."""

    values: dict[str, np.ndarray]
    calibrating: np.ndarray  # [W] bool


@dataclass
class ParticipantState:
    """Running statistics of one participant, per modality."""

    spec: FeatureSpec
    warmup_s: float
    stats: dict[str, RunningStats] = field(init=False)
    seen: float = 0.0  # seconds of this participant's signal counted so far
    newest_end: float | None = None
    settled_at: float | None = None  # end of the first window after the calibration

    @property
    def frozen(self) -> bool:
        """Whether the statistics stop moving once the calibration is over."""
        return self.spec.participant_norm.freeze

    def __post_init__(self) -> None:
        settings = self.spec.participant_norm
        self.stats = {
            m.name: RunningStats(m, settings.prior_s, settings.clip) for m in self.spec.modalities
        }

    def count(self, t_end: float) -> bool:
        """Count a window with data ending at ``t_end``; True while calibrating."""
        window = self.spec.max_window_s
        gap = window if self.newest_end is None else t_end - self.newest_end
        self.seen += window if gap <= 0 else min(gap, window)
        self.newest_end = t_end
        calibrating = self.seen < self.warmup_s
        if not calibrating and self.settled_at is None:
            self.settled_at = t_end
        return calibrating

    def add(
        self, t_end: float, values: Mapping[str, np.ndarray], present: np.ndarray
    ) -> tuple[dict[str, np.ndarray], bool]:
        """Count one window (raw features per modality, ``present`` [M]) and return its
        standardised features and whether it is calibrating."""
        out = {}
        for m, mod in enumerate(self.spec.modalities):
            raw = np.asarray(values[mod.name], dtype=np.float64)
            if not present[m]:
                out[mod.name] = np.full(raw.shape, np.nan, dtype=np.float32)
                continue
            stats = self.stats[mod.name]
            flat = raw.reshape(-1)
            gap = mod.window_s if stats.last_end is None else t_end - stats.last_end
            # a step back in time is another recording of the person: a fresh window
            weight = mod.window_s if gap <= 0 else min(gap, mod.window_s)
            if not (self.frozen and self.seen >= self.warmup_s):
                stats.update(flat, weight)
            stats.last_end = t_end
            out[mod.name] = stats.standardise(flat).reshape(raw.shape).astype(np.float32)
        calibrating = self.count(t_end) if present.any() else self.seen < self.warmup_s
        return out, calibrating

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen_s": self.seen,
            "warmup_s": self.warmup_s,
            "newest_end": self.newest_end,
            "settled_at": self.settled_at,
            "modalities": {name: s.to_dict() for name, s in self.stats.items()},
        }

    def load(self, data: Mapping[str, Any]) -> None:
        # a baseline span's calibration has its own length (what it covered)
        self.warmup_s = float(data.get("warmup_s", self.warmup_s))
        self.seen = float(data.get("seen_s", 0.0))
        self.newest_end = data.get("newest_end")
        self.settled_at = data.get("settled_at")
        for name, stats in data.get("modalities", {}).items():
            if name in self.stats:
                self.stats[name].load(stats)


class FeatureNormaliser:
    """Raw features -> model input, the way the spec says: the population's z-score
    (``global``), or each participant's own running statistics (``participant``).

    Live and replay hold one per session (the state lives as long as the session);
    training builds one per participant sequence (:func:`normalise_sequences`).
    """

    def __init__(self, spec: FeatureSpec, baseline_s: float = 0.0):
        if not spec.is_normalized:
            raise FeatureError("the spec has no normalisation statistics")
        self.spec = spec
        self.baseline_s = float(baseline_s)
        self.participants: dict[str, ParticipantState] = {}
        # participant -> (window end, settled state): a live session's calibration,
        # taken over exactly when a replay reaches that window (see :meth:`pin`)
        self._pins: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self.pinned = False  # follows a live session's calibration (no recalibrating)

    @property
    def warmup_s(self) -> float:
        if not self.spec.per_participant:
            return self.baseline_s
        return max(self.spec.participant_norm.warmup_s, self.baseline_s)

    def state(self, participant: str = "") -> ParticipantState:
        if participant not in self.participants:
            self.participants[participant] = ParticipantState(self.spec, self.warmup_s)
        return self.participants[participant]

    def apply(
        self,
        t_end: np.ndarray,
        values: Mapping[str, np.ndarray],
        present: np.ndarray,
        participant: str = "",
    ) -> NormalisedBatch:
        """Standardise W windows of one participant, given in time order."""
        n = len(present)
        pin = self._pins.get(participant)
        if pin is not None and n and t_end[-1] >= pin[0] - PIN_TOLERANCE_S:
            return self._apply_across_pin(t_end, values, present, participant, pin)
        if not self.spec.per_participant:
            state = self.state(participant)
            # a present window's features are finite; an absent one's NaN stay NaN
            out = {
                m.name: np.where(
                    present[:, i].reshape(-1, *[1] * len(m.feature_shape)),
                    normalize_values(m, values[m.name]),
                    np.float32(np.nan),
                )
                for i, m in enumerate(self.spec.modalities)
            }
            calibrating = np.array(  # a baseline still flags the windows it spans
                [
                    state.count(float(t)) if p.any() else state.seen < self.warmup_s
                    for t, p in zip(t_end, present, strict=True)
                ],
                dtype=bool,
            )
            return NormalisedBatch(out, calibrating)
        state = self.state(participant)
        out = {
            m.name: np.full((n, *m.feature_shape), np.nan, np.float32) for m in self.spec.modalities
        }
        calibrating = np.zeros(n, dtype=bool)
        for w in range(n):
            row = {name: values[name][w] for name in out}
            normalised, calibrating[w] = state.add(float(t_end[w]), row, present[w])
            for name, vals in normalised.items():
                out[name][w] = vals
        return NormalisedBatch(out, calibrating)

    def to_dict(self) -> dict[str, Any]:
        return {
            "normalisation": self.spec.normalisation,
            "baseline_s": self.baseline_s,
            "participants": {p: s.to_dict() for p, s in self.participants.items()},
        }

    def recalibrate(
        self,
        t_end: np.ndarray,
        values: Mapping[str, np.ndarray],
        present: np.ndarray,
        participant: str = "",
    ) -> float:
        """Make these windows (a baseline span a label stream marked, after the fact)
        the participant's calibration: the statistics start again from the population
        prior, count exactly these windows and stay so. Returns the seconds they cover."""
        state = ParticipantState(self.spec, warmup_s=np.inf)  # everything counts
        self.participants[participant] = state
        self.apply(t_end, values, present, participant)
        covered = state.seen
        state.warmup_s = covered  # calibrated: nothing more counts (frozen statistics)
        state.settled_at = None  # the next window is the first after the calibration
        return covered

    def _apply_across_pin(
        self,
        t_end: np.ndarray,
        values: Mapping[str, np.ndarray],
        present: np.ndarray,
        participant: str,
        pin: tuple[float, Mapping[str, Any]],
    ) -> NormalisedBatch:
        """The windows before the pinned one as usual; then the live session's settled
        state, and the windows from there with it."""
        first = int(np.searchsorted(t_end, pin[0] - PIN_TOLERANCE_S))
        parts = []
        for before, rows in ((True, slice(0, first)), (False, slice(first, len(t_end)))):
            if not before:
                del self._pins[participant]
                self.state(participant).load(pin[1])
            if rows.stop > rows.start:
                part = {k: v[rows] for k, v in values.items()}
                parts.append(self.apply(t_end[rows], part, present[rows], participant))
        return NormalisedBatch(
            {k: np.concatenate([p.values[k] for p in parts]) for k in parts[-1].values},
            np.concatenate([p.calibrating for p in parts]),
        )

    def pin(self, data: Mapping[str, Any]) -> None:
        """Take over a live session's settled statistics (its state at the end, from a
        recording's sidecar) at the window where they settled: a replay's windows from
        then on are normalised exactly as live, although the recording may lack the
        first seconds the live session calibrated on. Only fixed statistics can be
        taken over (``freeze``); running ones are recomputed from the recording."""
        if self.spec.per_participant and not self.spec.participant_norm.freeze:
            return
        for participant, state in data.get("participants", {}).items():
            settled_at = state.get("settled_at")
            if settled_at is not None:
                self._pins[participant] = (float(settled_at), state)
                self.pinned = True

    def load(self, data: Mapping[str, Any]) -> None:
        """Continue from a saved state (a recording's sidecar)."""
        self.baseline_s = float(data.get("baseline_s", self.baseline_s))
        for participant, state in data.get("participants", {}).items():
            self.state(participant).load(state)
            if "warmup_s" not in state:  # a sidecar of 2026-12-06 or before
                self.participants[participant].warmup_s = self.warmup_s


def normalise_sequences(
    spec: FeatureSpec,
    values: Mapping[str, np.ndarray],
    present: np.ndarray,
    t_end_s: np.ndarray,
    subjects: np.ndarray,
    seed: Mapping[str, tuple[np.ndarray, Mapping[str, np.ndarray], np.ndarray]] | None = None,
) -> NormalisedBatch:
    """Standardise a data set's windows as a session would have: per subject, in the
    data set's order (time order within each recording, recordings one after the
    other), calibrated on its baseline windows (``seed[subject] = (t_end, values,
    present)``) when it has some, as a session is by a baseline span on its label
    stream, else on its first ``warmup_s`` seconds."""
    n = len(present)
    out = {m.name: np.full((n, *m.feature_shape), np.nan, np.float32) for m in spec.modalities}
    calibrating = np.zeros(n, dtype=bool)
    for subject in np.unique(subjects):
        normaliser = FeatureNormaliser(spec)
        if seed is not None and subject in seed:
            normaliser.recalibrate(*seed[subject])  # the rest is the calibration, as live
        rows = np.flatnonzero(subjects == subject)
        batch = normaliser.apply(
            t_end_s[rows], {k: np.asarray(v)[rows] for k, v in values.items()}, present[rows]
        )
        for name, vals in batch.values.items():
            out[name][rows] = vals
        calibrating[rows] = batch.calibrating
    return NormalisedBatch(out, calibrating)
