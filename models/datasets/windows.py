"""Windows of features with distribution labels: the one data-set shape of the project.

Every data set (synthetic, DMER, WESAD, labelled XDF recordings) becomes a
:class:`WindowDataset`: per modality a ``[N, *feature_shape]`` array of raw
(not yet normalised) features with NaN where absent, a ``present [N, M]`` mask,
``targets [N, K]`` distributions, and per window the subject and trial it comes
from, so that splits can keep subjects (or trials) on one side only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from helo.models.errors import DatasetError
from helo.models.features.adapt import InputAdapter
from helo.models.features.extract import extract
from helo.models.features.spec import FeatureSpec


@dataclass
class BaselineWindows:
    """Raw features of rest periods (a session's baseline), per subject: never trained
    on or scored, they seed the participant's normalisation statistics."""

    values: dict[str, np.ndarray]
    present: np.ndarray  # [B, M]
    subjects: np.ndarray  # [B] str
    t_end_s: np.ndarray  # [B]

    def seeds(self) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]]:
        """Per subject: (window ends, values, present) in time order."""
        out = {}
        for subject in np.unique(self.subjects):
            rows = np.flatnonzero(self.subjects == subject)
            out[str(subject)] = (
                self.t_end_s[rows],
                {k: v[rows] for k, v in self.values.items()},
                self.present[rows],
            )
        return out

    def select(self, cols: list[int], names: Sequence[str]) -> BaselineWindows:
        return replace(
            self, values={n: self.values[n] for n in names}, present=self.present[:, cols]
        )

    @staticmethod
    def concat(parts: Sequence[BaselineWindows]) -> BaselineWindows:
        return BaselineWindows(
            values={k: np.concatenate([p.values[k] for p in parts]) for k in parts[0].values},
            present=np.concatenate([p.present for p in parts]),
            subjects=np.concatenate([p.subjects for p in parts]),
            t_end_s=np.concatenate([p.t_end_s for p in parts]),
        )


@dataclass
class WindowDataset:
    """Feature windows with labels; plain numpy arrays, aligned on the first axis."""

    spec: FeatureSpec
    values: dict[str, np.ndarray]
    present: np.ndarray  # [N, M] bool, columns in spec order
    targets: np.ndarray  # [N, K], rows sum to 1
    subjects: np.ndarray  # [N] str
    trials: np.ndarray  # [N] str, unique across subjects
    t_end_s: np.ndarray  # [N] window end (seconds in its recording)
    name: str = ""
    baseline: BaselineWindows | None = None  # rest windows that seed participant statistics

    def __post_init__(self) -> None:
        n = len(self.targets)
        if self.targets.ndim != 2 or self.targets.shape[1] != self.spec.n_labels:
            raise DatasetError(
                f"{self.name or 'data set'}: targets {self.targets.shape} do not match "
                f"{self.spec.n_labels} labels"
            )
        for key, arr in (
            ("present", self.present),
            ("subjects", self.subjects),
            ("trials", self.trials),
            ("t_end_s", self.t_end_s),
            *self.values.items(),
        ):
            if len(arr) != n:
                raise DatasetError(f"{self.name or 'data set'}: {key} has {len(arr)} rows, not {n}")
        if n and not np.allclose(self.targets.sum(axis=1), 1.0, atol=1e-4):
            raise DatasetError(f"{self.name or 'data set'}: target rows must sum to 1")

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, index: np.ndarray | Sequence[int]) -> WindowDataset:
        idx = np.asarray(index)
        return replace(
            self,
            values={k: v[idx] for k, v in self.values.items()},
            present=self.present[idx],
            targets=self.targets[idx],
            subjects=self.subjects[idx],
            trials=self.trials[idx],
            t_end_s=self.t_end_s[idx],
        )

    def select_modalities(self, names: Sequence[str]) -> WindowDataset:
        """Only some modalities (windows with none of them are dropped)."""
        cols = [self.spec.names.index(n) for n in names]
        out = replace(
            self,
            spec=self.spec.select(list(names)),
            values={n: self.values[n] for n in names},
            present=self.present[:, cols],
            baseline=self.baseline.select(cols, names) if self.baseline is not None else None,
        )
        return out.subset(np.flatnonzero(out.present.any(axis=1)))

    @staticmethod
    def concat(parts: Sequence[WindowDataset], name: str = "") -> WindowDataset:
        if not parts:
            raise DatasetError("no data to concatenate")
        first = parts[0]
        for part in parts[1:]:
            if part.spec.names != first.spec.names or part.spec.labels != first.spec.labels:
                raise DatasetError(
                    f"cannot combine {part.name!r} with {first.name!r}: modalities or labels differ"
                )
        baselines = [p.baseline for p in parts if p.baseline is not None]
        return WindowDataset(
            spec=first.spec,
            values={k: np.concatenate([p.values[k] for p in parts]) for k in first.values},
            present=np.concatenate([p.present for p in parts]),
            targets=np.concatenate([p.targets for p in parts]),
            subjects=np.concatenate([p.subjects for p in parts]),
            trials=np.concatenate([p.trials for p in parts]),
            t_end_s=np.concatenate([p.t_end_s for p in parts]),
            name=name or first.name,
            baseline=BaselineWindows.concat(baselines) if baselines else None,
        )

    def summary(self) -> str:
        per_mod = ", ".join(
            f"{n} {100 * self.present[:, i].mean():.0f}%" for i, n in enumerate(self.spec.names)
        )
        return (
            f"{self.name or 'data set'}: {len(self)} windows, "
            f"{len(np.unique(self.subjects))} subjects, {len(np.unique(self.trials))} trials; "
            f"present: {per_mod}"
        )

    def save(self, path: str | Path) -> None:
        """Cache as ``.npz`` (no pickles: strings are stored as unicode arrays)."""
        arrays: dict[str, Any] = {
            "spec": np.array(self.spec.to_json()),
            "name": np.array(self.name),
            "present": self.present,
            "targets": self.targets,
            "subjects": self.subjects.astype(str),
            "trials": self.trials.astype(str),
            "t_end_s": self.t_end_s,
            **{f"value__{k}": v for k, v in self.values.items()},
        }
        if self.baseline is not None:
            arrays["baseline__present"] = self.baseline.present
            arrays["baseline__subjects"] = self.baseline.subjects.astype(str)
            arrays["baseline__t_end_s"] = self.baseline.t_end_s
            arrays.update({f"baseline__value__{k}": v for k, v in self.baseline.values.items()})
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> WindowDataset:
        try:
            with np.load(path, allow_pickle=False) as data:
                values = {
                    k[len("value__") :]: data[k] for k in data.files if k.startswith("value__")
                }
                baseline = None
                if "baseline__present" in data.files:
                    baseline = BaselineWindows(
                        values={
                            k[len("baseline__value__") :]: data[k]
                            for k in data.files
                            if k.startswith("baseline__value__")
                        },
                        present=data["baseline__present"],
                        subjects=data["baseline__subjects"],
                        t_end_s=data["baseline__t_end_s"],
                    )
                return cls(
                    spec=FeatureSpec.from_json(str(data["spec"])),
                    values=values,
                    present=data["present"],
                    targets=data["targets"],
                    subjects=data["subjects"],
                    trials=data["trials"],
                    t_end_s=data["t_end_s"],
                    name=str(data["name"]),
                    baseline=baseline,
                )
        except (OSError, KeyError, ValueError) as exc:
            raise DatasetError(f"{path}: not a cached window data set ({exc})") from None


def window_ends(t_start_s: float, t_stop_s: float, window_s: float, hop_s: float) -> np.ndarray:
    """End times of the windows of ``window_s`` that fit in ``[t_start_s, t_stop_s]``."""
    first = t_start_s + window_s
    if t_stop_s < first:
        return np.empty(0)
    return first + np.arange(int(np.floor((t_stop_s - first) / hop_s + 1e-9)) + 1) * hop_s


def features_from_recording(
    spec: FeatureSpec,
    streams: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ends_s: np.ndarray,
    progress: Callable[[int], None] | None = None,
    adapters: Mapping[str, InputAdapter] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Raw features of windows ending at ``ends_s`` from continuous streams.

    ``streams[name] = (times_s [n], samples [n, C])``: a recorded stream as it is,
    adapted to the model by ``adapters[name]`` (the plan the stream mapping made),
    or, without one, already shaped like the spec (its channels in order, at its
    rate). Windows are cut and adapted by the very code live inference and replay
    use, so training windows are replay windows. Returns ``(values, present)`` like
    :func:`models.features.extract.extract`.
    """
    n_win = len(ends_s)
    values = {
        m.name: np.full((n_win, *m.feature_shape), np.nan, np.float32) for m in spec.modalities
    }
    present = np.zeros((n_win, len(spec.modalities)), dtype=bool)
    for m, mod in enumerate(spec.modalities):
        if mod.name not in streams:
            continue
        times, samples = streams[mod.name]
        adapter = (adapters or {}).get(mod.name) or InputAdapter.for_spec(mod)
        for idx, windows, _ in adapter.windows(times, samples, ends_s):
            if windows is not None:  # else a glitch: the modality stays absent
                batch = extract(spec.select([mod.name]), {mod.name: windows}, normalize=False)
                values[mod.name][idx] = batch.values[mod.name]
                present[idx, m] = batch.present[:, 0]
            if progress:
                progress(len(idx))
    return values, present
