"""WESAD (Schmidt et al., ICMI 2018) as a :class:`WindowDataset` of GSR and PPG windows.

Each subject folder ``S<n>/`` holds ``S<n>.pkl``, a pickle written by Python 2:
``{'signal': {'chest': {'ACC', 'ECG', 'EMG', 'EDA', 'Temp', 'Resp'} (700 Hz),
'wrist': {'ACC' (32 Hz), 'BVP' (64 Hz), 'EDA' (4 Hz), 'TEMP' (4 Hz)}},
'label': [N] (700 Hz), 'subject': 'S<n>'}``, with label 1 baseline, 2 stress,
3 amusement, 4 meditation (0 and 5-7 are not conditions). We compute the very
features a live model uses: GSR statistics of the chest EDA resampled to 32 Hz
and PPG statistics of the wrist BVP at 64 Hz. Windows lie inside one condition
segment, so every window has one label and one trial.

Labels are the 10 PANAS items of DMER. A condition's distribution is its PANAS
answers to those items, normalised to sum 1, read from ``S<n>_quest.csv`` when
the folder has one, else taken from :data:`DEFAULT_PANAS` (a fixed prior, see
there). The quest layout we read is described in :func:`read_quest`.

Pickles can run code when loaded, so these are read with an unpickler that only
builds numpy arrays, dtypes, scalars and plain containers, and refuses anything
else with a :class:`DatasetError`.
"""

from __future__ import annotations

import builtins
import csv
import logging
import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from helo.models.datasets.dmer import PANAS_LABELS
from helo.models.datasets.windows import (
    BaselineWindows,
    WindowDataset,
    features_from_recording,
    window_ends,
)
from helo.models.errors import DatasetError
from helo.models.features.spec import FeatureSpec, ModalitySpec

log = logging.getLogger(__name__)

CHEST_SRATE_HZ = 700
BVP_SRATE_HZ = 64
GSR_SRATE_HZ = 32  # chest EDA is resampled to this rate (the rate of our GSR feature)

CONDITIONS: dict[int, str] = {1: "baseline", 2: "stress", 3: "amusement", 4: "meditation"}

# Fixed PANAS answers (1 = not at all ... 5 = extremely) per condition, in the order
# of PANAS_LABELS (Inspired, Alert, Excited, Enthusiastic, Determined, Afraid,
# Upset, Nervous, Scared, Distressed). A hand-made prior, not measured: stress
# high on the negative items, amusement on the positive ones, baseline and
# meditation flat and low. Used only for subjects without a quest file.
DEFAULT_PANAS: dict[str, tuple[float, ...]] = {
    "baseline": (2.0, 2.5, 1.5, 2.0, 2.0, 1.0, 1.0, 1.5, 1.0, 1.0),
    "stress": (1.5, 3.5, 1.5, 1.5, 3.0, 2.5, 3.0, 4.0, 2.5, 3.5),
    "amusement": (2.5, 3.0, 3.5, 3.5, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    "meditation": (2.0, 1.5, 1.0, 1.5, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0),
}

# Column of each of our labels in a "# PANAS" row of S<n>_quest.csv (0-based, after
# the row name). WESAD asks, in this order: Active, Distressed, Interested,
# Inspired, Annoyed, Strong, Guilty, Scared, Hostile, Excited, Proud, Irritable,
# Enthusiastic, Ashamed, Alert, Nervous, Determined, Attentive, Jittery, Afraid,
# then extra items (Stressed, Frustrated, Happy, [Angry, Irritated after the
# stress condition], Sad). WESAD has no "Upset"; its "Annoyed" (the German PANAS
# item "verärgert", which translates "upset") stands in for it.
QUEST_PANAS_COLUMN: dict[str, int] = {
    "Inspired": 3,
    "Alert": 14,
    "Excited": 9,
    "Enthusiastic": 12,
    "Determined": 16,
    "Afraid": 19,
    "Upset": 4,
    "Nervous": 15,
    "Scared": 7,
    "Distressed": 1,
}
# Condition names of the quest "# ORDER" row (first word) -> our condition.
QUEST_CONDITIONS: dict[str, str] = {
    "base": "baseline",
    "tsst": "stress",
    "fun": "amusement",
    "medi": "meditation",
}


def wesad_spec(window_s: float = 5.0, hop_s: float = 1.0) -> FeatureSpec:
    """GSR (32 Hz) and PPG (64 Hz) statistics over ``window_s``; the 10 PANAS labels."""
    return FeatureSpec(
        modalities=(
            ModalitySpec(
                "gsr", "physiological", "gsr_stats", "GSR", ("GSR",), GSR_SRATE_HZ, window_s, (28,)
            ),
            ModalitySpec(
                "ppg",
                "physiological",
                "ppg_stats",
                "PPG",
                ("PPG",),
                BVP_SRATE_HZ,
                window_s,
                (27,),
                params={"band_hz": [0.5, 8.0]},
            ),
        ),
        labels=PANAS_LABELS,
        hop_s=hop_s,
    )


def load_wesad(path: str | Path, window_s: float = 5.0, hop_s: float = 1.0) -> WindowDataset:
    """Every subject under the WESAD root ``path`` (or one subject folder) as one data set.

    Windows of ``window_s`` end every ``hop_s`` seconds inside each condition
    segment; trial = ``"<subject>/<condition><k>"`` (k-th segment of that
    condition, from 0), so trial- and subject-level splits keep segments whole.
    """
    for name, value in (("window_s", window_s), ("hop_s", hop_s)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise DatasetError(f"WESAD: {name} must be a number > 0, got {value!r}")
    spec = wesad_spec(window_s, hop_s)
    parts = [
        part
        for folder in _subject_folders(Path(path))
        if (part := _load_subject(folder, spec, hop_s)) is not None
    ]
    if not parts:
        raise DatasetError(
            f"{path}: no WESAD condition segment is long enough for a {window_s:g} s window"
        )
    return WindowDataset.concat(parts, name="wesad")


def _subject_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder (expected the WESAD root with S<n>/S<n>.pkl)")
    if (root / f"{root.name}.pkl").is_file():
        return [root]
    folders = [
        p
        for p in root.iterdir()
        if re.fullmatch(r"S\d+", p.name) and (p / f"{p.name}.pkl").is_file()
    ]
    if not folders:
        raise DatasetError(f"{root}: no WESAD subject files S<n>/S<n>.pkl in this folder")
    return sorted(folders, key=lambda p: int(p.name[1:]))


# --------------------------------------------------------------------------- one subject


@dataclass(frozen=True)
class Segment:
    """A stretch of one condition: label samples ``[start, stop)`` at 700 Hz."""

    condition: str
    index: int  # k-th segment of this condition in the recording, from 0
    start: int
    stop: int

    @property
    def t_start_s(self) -> float:
        return self.start / CHEST_SRATE_HZ

    @property
    def t_last_s(self) -> float:
        """Time of the segment's last sample (windows end at or before it)."""
        return (self.stop - 1) / CHEST_SRATE_HZ


def _load_subject(folder: Path, spec: FeatureSpec, hop_s: float) -> WindowDataset | None:
    subject = folder.name
    pkl = folder / f"{subject}.pkl"
    signals = _subject_signals(pkl, read_wesad_pickle(pkl))
    quest_file = folder / f"{subject}_quest.csv"
    quest = read_quest(quest_file) if quest_file.is_file() else None
    if quest is None:
        log.info("%s: no quest file; condition labels from the fixed table", folder)
    window_s = spec.max_window_s
    ends, targets, trials = [], [], []
    for seg in condition_segments(signals["label"]):
        seg_ends = window_ends(seg.t_start_s, seg.t_last_s, window_s, hop_s)
        ends.append(seg_ends)
        targets += [_distribution(seg, quest, quest_file)] * len(seg_ends)
        trials += [f"{subject}/{seg.condition}{seg.index}"] * len(seg_ends)
    all_ends = np.concatenate(ends) if ends else np.empty(0)
    if len(all_ends) == 0:
        log.warning("%s: no condition segment holds a %g s window; subject skipped", pkl, window_s)
        return None
    streams = {
        "gsr": _regular(_resample_eda(signals["eda"]), GSR_SRATE_HZ),
        "ppg": _regular(signals["bvp"], BVP_SRATE_HZ),
    }
    values, present = features_from_recording(spec, streams, all_ends)
    # The protocol's baseline condition (sitting, reading neutral magazines, before the
    # others) seeds participant normalisation; it stays a labelled trial as well.
    rest = np.flatnonzero(np.array(trials) == f"{subject}/baseline0")
    baseline = BaselineWindows(
        values={k: v[rest] for k, v in values.items()},
        present=present[rest],
        subjects=np.full(len(rest), subject),
        t_end_s=all_ends[rest],
    )
    return WindowDataset(
        spec=spec,
        values=values,
        present=present,
        targets=np.array(targets),
        subjects=np.full(len(all_ends), subject),
        trials=np.array(trials),
        t_end_s=all_ends,
        name="wesad",
        baseline=baseline if len(rest) else None,
    )


def _subject_signals(pkl: Path, data: Any) -> dict[str, np.ndarray]:
    """The three arrays we use, checked: chest EDA and labels (700 Hz), wrist BVP (64 Hz)."""
    try:
        chest, wrist = data["signal"]["chest"], data["signal"]["wrist"]
        eda, bvp, label = chest["EDA"], wrist["BVP"], data["label"]
    except (KeyError, TypeError, IndexError) as exc:
        raise DatasetError(
            f"{pkl}: not a WESAD subject file (no {exc} entry; expected "
            "'signal' -> 'chest'/'wrist' and 'label')"
        ) from None
    out = {}
    for key, arr in (("eda", eda), ("bvp", bvp), ("label", label)):
        arr = np.asarray(arr)
        if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] != 1) or arr.size == 0:
            raise DatasetError(f"{pkl}: {key} has shape {list(arr.shape)}, expected [samples, 1]")
        out[key] = arr.ravel()
    if len(out["eda"]) != len(out["label"]):
        raise DatasetError(
            f"{pkl}: chest EDA has {len(out['eda'])} samples but 'label' has "
            f"{len(out['label'])}; both should be at {CHEST_SRATE_HZ} Hz"
        )
    out["eda"] = out["eda"].astype(np.float64)
    out["bvp"] = out["bvp"].astype(np.float64)
    out["label"] = out["label"].astype(np.int64)
    return out


def condition_segments(label: np.ndarray) -> list[Segment]:
    """Runs of one condition (labels 1-4) in a 700 Hz label array, in time order."""
    label = np.asarray(label).ravel()
    change = np.flatnonzero(np.diff(label)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(label)]])
    segments, seen = [], dict.fromkeys(CONDITIONS.values(), 0)
    for start, stop in zip(starts, stops, strict=True):
        condition = CONDITIONS.get(int(label[start]))
        if condition is None:
            continue
        segments.append(Segment(condition, seen[condition], int(start), int(stop)))
        seen[condition] += 1
    return segments


def _resample_eda(eda_700hz: np.ndarray) -> np.ndarray:
    """Chest EDA at 700 Hz -> 32 Hz (polyphase, anti-aliased: 32/700 = 8/175)."""
    g = math.gcd(GSR_SRATE_HZ, CHEST_SRATE_HZ)
    return resample_poly(eda_700hz, GSR_SRATE_HZ // g, CHEST_SRATE_HZ // g)


def _regular(samples: np.ndarray, srate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """``(times_s, samples [n, 1])`` of a signal whose first sample is at t = 0."""
    return np.arange(len(samples)) / srate_hz, samples[:, None]


def _distribution(
    seg: Segment, quest: dict[tuple[str, int], np.ndarray] | None, quest_file: Path
) -> np.ndarray:
    """The segment's label: its quest answers, else the condition's first, else the table."""
    scores = None
    if quest is not None:
        scores = quest.get((seg.condition, seg.index), quest.get((seg.condition, 0)))
        if scores is None:
            log.warning(
                "%s: no PANAS answers for %s; using the fixed table", quest_file, seg.condition
            )
    if scores is None:
        scores = np.asarray(DEFAULT_PANAS[seg.condition], dtype=np.float64)
    return scores / scores.sum()


# --------------------------------------------------------------------------- quest file


def read_quest(path: str | Path) -> dict[tuple[str, int], np.ndarray]:
    """PANAS answers per (condition, k-th occurrence) from a WESAD ``S<n>_quest.csv``.

    The layout we read (``;``-separated, the first cell names the row)::

        # Subj;S2;;...
        # ORDER;Base;TSST;Medi 1;Fun;Medi 2;sRead;fRead;...
        # START;7.08;39.55;...            (minutes.seconds; not used: the pickle's
        # END;26.32;50.30;...              labels mark the segments)
        # PANAS;1;2;1;...                 one row per condition, in ORDER order
        # STAI;...  # DIM;...  # SSSQ;...  (not used)

    The k-th ``# PANAS`` row answers the k-th ORDER entry; entries that are not
    conditions (the reading phases) have no PANAS row. Answers are 1..5; a row
    whose items we need are not all numbers is skipped with a warning.
    """
    path = Path(path)
    rows = _quest_rows(path)
    order = rows.get("# ORDER")
    if not order:
        raise DatasetError(f"{path}: no '# ORDER' row (not a WESAD quest file)")
    panas_rows = rows.get("# PANAS", [])
    if not panas_rows:
        raise DatasetError(f"{path}: no '# PANAS' rows")
    answers: dict[tuple[str, int], np.ndarray] = {}
    seen: dict[str, int] = {}
    for name, row in zip(order[0], panas_rows, strict=False):
        condition = QUEST_CONDITIONS.get(name.split()[0].lower()) if name.strip() else None
        if condition is None:
            raise DatasetError(
                f"{path}: ORDER entry {name!r} is not a condition but has a PANAS row"
            )
        k = seen.get(condition, 0)
        seen[condition] = k + 1
        scores = _panas_scores(row)
        if scores is None:
            log.warning(
                "%s: PANAS row of %s is incomplete; that condition uses the fixed table", path, name
            )
            continue
        answers[(condition, k)] = scores
    return answers


def _quest_rows(path: Path) -> dict[str, list[list[str]]]:
    """Rows by their first cell, the rest of each row stripped of empty trailing cells."""
    try:
        with path.open(newline="", encoding="latin-1") as f:
            table = list(csv.reader(f, delimiter=";"))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    rows: dict[str, list[list[str]]] = {}
    for row in table:
        if row and row[0].strip():
            cells = [c.strip() for c in row[1:]]
            while cells and not cells[-1]:
                cells.pop()
            rows.setdefault(row[0].strip(), []).append(cells)
    return rows


def _panas_scores(row: list[str]) -> np.ndarray | None:
    """Our 10 items out of one PANAS row (None if one is missing or not a number)."""
    scores = []
    for label in PANAS_LABELS:
        column = QUEST_PANAS_COLUMN[label]
        try:
            value = float(row[column])
        except (IndexError, ValueError):
            return None
        if not (math.isfinite(value) and value >= 0):
            return None
        scores.append(value)
    out = np.array(scores)
    return out if out.sum() > 0 else None


# --------------------------------------------------------------------------- safe unpickling


def _numpy_reconstructors() -> dict[tuple[str, str], Any]:
    """The numpy callables a pickled array or scalar names, under old and new module names.

    Python 2 (the WESAD files) and Python 3 protocols <= 4 name ``_reconstruct``;
    Python 3's default protocol 5 names ``_frombuffer`` (a re-saved file). Taken
    from numpy's own ``__reduce_ex__`` so that no private module is imported.
    """
    reconstruct = np.zeros(1).__reduce_ex__(2)[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    scalar = np.float64(0).__reduce_ex__(2)[0]
    out: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        out[(f"{core}.multiarray", "scalar")] = scalar
        out[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return out


# Python 2 pickles name builtins "__builtin__"; Python 3 ones "builtins".
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **_numpy_reconstructors(),
    **{
        (module, name): getattr(builtins, name)
        for module in ("builtins", "__builtin__")
        for name in ("dict", "list", "str", "int", "float")
    },
}


class _WesadUnpickler(pickle.Unpickler):
    """Builds only numpy arrays, dtypes, scalars and plain containers."""

    def __init__(self, file: Any, path: Path):
        super().__init__(file, encoding="latin1")  # written by Python 2
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DatasetError(
                f"{self._path}: refused to unpickle {module}.{name} (a WESAD file holds only "
                "numpy arrays, numbers and strings; this file may not be safe to load)"
            ) from None


def read_wesad_pickle(path: str | Path) -> Any:
    """Load a WESAD ``S<n>.pkl`` without letting it run code (see the module docstring)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return _WesadUnpickler(f, path).load()
    except DatasetError:
        raise
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
    ) as exc:
        raise DatasetError(
            f"{path}: not a readable WESAD pickle ({type(exc).__name__}: {exc})"
        ) from None
