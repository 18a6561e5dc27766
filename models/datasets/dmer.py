"""DMER feature files (Yang et al., Sci Data 2024) as a :class:`WindowDataset`.

The DMER release gives, per subject, one MATLAB ``.mat`` file of features that
the authors computed themselves (we cannot recompute them from raw signals, so
every modality is ``"precomputed"``):

- ``feas``: ``[N, 913]`` rows, one per 1 s step: 90 EEG values (18 channels x 5
  differential-entropy bands, channel-major), 28 GSR statistics, 27 PPG
  statistics and 768 LBP-TOP values of the face video;
- ``vids``: ``[N, 1]`` or ``[1, N]``, the clip each row belongs to;
- ``dis_label``: ``[n_clips, 10]`` PANAS scores of each clip.

The authors' code reads ``dis_label[int(vid)]`` (0-based) and normalises the row
to sum 1; we do the same. Files whose ``vids`` run from 1 to ``n_clips`` are
read as 1-based (logged, and said in the data set's name). A block of a row with
NaN/Inf masks that modality for that row instead of passing a number on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.io

from helo.models.datasets.windows import WindowDataset
from helo.models.errors import DatasetError
from helo.models.features.spec import FeatureSpec, ModalitySpec

log = logging.getLogger(__name__)

# The 10 PANAS items DMER labels, in the order of dis_label's columns.
PANAS_LABELS: tuple[str, ...] = (
    "Inspired",
    "Alert",
    "Excited",
    "Enthusiastic",
    "Determined",
    "Afraid",
    "Upset",
    "Nervous",
    "Scared",
    "Distressed",
)
DMER_EEG_CHANNELS: tuple[str, ...] = tuple(f"EEG{i:02d}" for i in range(1, 19))
DMER_WINDOW_S = 5.0

# (modality, group, stream type, channels, srate_hz, feature_shape), in the order
# of the blocks of a ``feas`` row. The rates are those DMER recorded at; features
# arrive precomputed, so nothing is computed at these rates: they only document
# where the numbers came from.
_BLOCKS: tuple[tuple[str, str, str, tuple[str, ...], float, tuple[int, ...]], ...] = (
    ("eeg", "physiological", "EEG", DMER_EEG_CHANNELS, 300.0, (18, 5)),
    ("gsr", "physiological", "GSR", ("GSR",), 4.0, (28,)),
    ("ppg", "physiological", "PPG", ("PPG",), 100.0, (27,)),
    ("video", "behavioral", "Video", ("LBP-TOP",), 30.0, (768,)),
)
N_FEATURES = sum(int(np.prod(shape)) for *_, shape in _BLOCKS)  # 913
_LAYOUT = "90 EEG + 28 GSR + 27 PPG + 768 video"


def dmer_spec() -> FeatureSpec:
    """The spec of DMER's precomputed features (10 PANAS labels, 5 s windows)."""
    modalities = tuple(
        ModalitySpec(
            name, group, "precomputed", stream_type, channels, srate_hz, DMER_WINDOW_S, shape
        )
        for name, group, stream_type, channels, srate_hz, shape in _BLOCKS
    )
    return FeatureSpec(modalities=modalities, labels=PANAS_LABELS, hop_s=1.0)


def load_dmer(path: str | Path) -> WindowDataset:
    """All DMER subject files of a folder (or one ``.mat`` file) as one data set.

    Raises :class:`DatasetError` (one line, naming the file) for a missing path, an
    empty folder, a file that is not a ``.mat`` file or lacks a key, a ``feas``
    of the wrong width, or a clip index outside ``dis_label``.
    """
    files = _mat_files(Path(path))
    spec = dmer_spec()
    parts, one_based = [], []
    for file in files:
        part, is_one_based = _load_subject(file, spec)
        parts.append(part)
        if is_one_based:
            one_based.append(file.stem)
    name = "dmer" + (f" (1-based vids: {', '.join(one_based)})" if one_based else "")
    return WindowDataset.concat(parts, name=name)


def _mat_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.mat"))
        if not files:
            raise DatasetError(
                f"{path}: no .mat files in this folder (expected DMER subject files)"
            )
        return files
    if path.is_file():
        return [path]
    raise DatasetError(f"{path}: no such file or folder")


def _load_subject(file: Path, spec: FeatureSpec) -> tuple[WindowDataset, bool]:
    """One subject's rows; also whether its ``vids`` were read as 1-based."""
    content = _read_mat(file)
    feas = _feature_rows(file, content)
    vids = _clip_ids(file, content, len(feas))
    dis_label = _clip_labels(file, content)
    clips, one_based = _clip_rows(file, vids, len(dis_label))
    if one_based:
        log.warning(
            "%s: 'vids' run from 1 to %d; read as 1-based clip numbers", file, len(dis_label)
        )
    targets = _distributions(file, dis_label, clips)
    values, present = _split_blocks(spec, feas)
    subject = file.stem
    keep = present.any(axis=1)
    if not keep.all():
        log.warning("%s: %d row(s) with no finite modality dropped", file, int((~keep).sum()))
    dataset = WindowDataset(
        spec=spec,
        values=values,
        present=present,
        targets=targets,
        subjects=np.full(len(feas), subject),
        trials=np.array([f"{subject}/clip{c:02d}" for c in clips]),
        t_end_s=_running_index(clips),
        name="dmer",
    )
    return dataset.subset(np.flatnonzero(keep)), one_based


def _read_mat(file: Path) -> dict[str, np.ndarray]:
    try:
        return scipy.io.loadmat(str(file))
    except NotImplementedError:
        raise DatasetError(
            f"{file}: MATLAB v7.3 (HDF5) files are not read; re-save it with save(..., '-v7')"
        ) from None
    except (ValueError, OSError, TypeError, scipy.io.matlab.MatReadError) as exc:
        raise DatasetError(f"{file}: not a readable MATLAB .mat file ({exc})") from None


def _require(file: Path, content: dict[str, np.ndarray], key: str) -> np.ndarray:
    if key not in content:
        keys = sorted(k for k in content if not k.startswith("__"))
        raise DatasetError(f"{file}: missing key {key!r} (the file has {keys})")
    try:
        return np.asarray(content[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{file}: {key!r} is not a numeric array") from None


def _feature_rows(file: Path, content: dict[str, np.ndarray]) -> np.ndarray:
    feas = _require(file, content, "feas")
    if feas.ndim != 2 or feas.shape[1] != N_FEATURES:
        raise DatasetError(
            f"{file}: 'feas' has shape {list(feas.shape)}, expected [rows, {N_FEATURES}] "
            f"({_LAYOUT})"
        )
    if len(feas) == 0:
        raise DatasetError(f"{file}: 'feas' has no rows")
    return feas


def _clip_ids(file: Path, content: dict[str, np.ndarray], n_rows: int) -> np.ndarray:
    vids = _require(file, content, "vids")
    if vids.ndim > 2 or (vids.ndim == 2 and 1 not in vids.shape) or vids.size != n_rows:
        raise DatasetError(
            f"{file}: 'vids' has shape {list(vids.shape)}, expected [{n_rows}, 1] or "
            f"[1, {n_rows}] (one clip index per row of 'feas')"
        )
    vids = vids.ravel()
    if not np.isfinite(vids).all() or not np.array_equal(vids, np.round(vids)):
        raise DatasetError(f"{file}: 'vids' must hold whole clip indices")
    return vids.astype(np.int64)


def _clip_labels(file: Path, content: dict[str, np.ndarray]) -> np.ndarray:
    dis_label = _require(file, content, "dis_label")
    if dis_label.ndim != 2 or dis_label.shape[1] != len(PANAS_LABELS) or len(dis_label) == 0:
        raise DatasetError(
            f"{file}: 'dis_label' has shape {list(dis_label.shape)}, expected "
            f"[clips, {len(PANAS_LABELS)}] (PANAS: {', '.join(PANAS_LABELS)})"
        )
    return dis_label


def _clip_rows(file: Path, vids: np.ndarray, n_clips: int) -> tuple[np.ndarray, bool]:
    """0-based rows of ``dis_label`` for each ``vid``, and whether vids were 1-based.

    0-based (the authors' code) unless the vids reach ``n_clips`` and never 0,
    which only 1-based numbering explains.
    """
    one_based = int(vids.max()) == n_clips and int(vids.min()) >= 1
    clips = vids - 1 if one_based else vids
    bad = (clips < 0) | (clips >= n_clips)
    if bad.any():
        raise DatasetError(
            f"{file}: clip index {int(vids[bad][0])} in 'vids' is outside 'dis_label' "
            f"({n_clips} clips, indices 0..{n_clips - 1} or 1..{n_clips})"
        )
    return clips, one_based


def _distributions(file: Path, dis_label: np.ndarray, clips: np.ndarray) -> np.ndarray:
    used = np.unique(clips)
    rows = dis_label[used]
    bad = ~np.isfinite(rows).all(axis=1) | (rows < 0).any(axis=1) | ~(rows.sum(axis=1) > 0)
    if bad.any():
        raise DatasetError(
            f"{file}: 'dis_label' row {int(used[bad][0])} cannot be a distribution "
            "(it needs finite scores >= 0 with a positive sum)"
        )
    normalised = dis_label[clips]
    return normalised / normalised.sum(axis=1, keepdims=True)


def _split_blocks(spec: FeatureSpec, feas: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Cut rows into modality blocks; a block with NaN/Inf is masked, never passed on."""
    values, present = {}, np.zeros((len(feas), len(spec.modalities)), dtype=bool)
    start = 0
    for m, mod in enumerate(spec.modalities):
        block = feas[:, start : start + mod.n_features]
        start += mod.n_features
        ok = np.isfinite(block).all(axis=1)
        block = np.where(ok[:, None], block, np.nan).astype(np.float32)
        values[mod.name] = block.reshape(len(feas), *mod.feature_shape)
        present[:, m] = ok
    return values, present


def _running_index(clips: np.ndarray) -> np.ndarray:
    """Position of each row within its clip (the 1 s step; rows keep file order)."""
    out = np.zeros(len(clips), dtype=np.float64)
    for clip in np.unique(clips):
        rows = np.flatnonzero(clips == clip)
        out[rows] = np.arange(len(rows))
    return out
