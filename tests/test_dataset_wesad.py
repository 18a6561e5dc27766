"""WESAD subject pickles -> GSR/PPG windows with PANAS distributions.

The subject files are written byte by byte as Python 2 wrote the real ones
(protocol 2, ``str`` as BINSTRING, arrays through ``numpy.core.multiarray``), and
read back with the standard unpickler the way every WESAD reader does, so the
loader is tested on the real format.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from helo.models.datasets.dmer import PANAS_LABELS
from helo.models.datasets.wesad import DEFAULT_PANAS, load_wesad, read_wesad_pickle
from helo.models.errors import DatasetError

CHEST_HZ, BVP_HZ, WRIST_ACC_HZ, WRIST_4HZ = 700, 64, 32, 4

# ------------------------------------------------------------------ Python 2 pickles


def _py2_str(text: str) -> bytes:
    raw = text.encode("latin-1")
    if len(raw) < 256:
        return b"U" + bytes([len(raw)]) + raw  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(raw)) + raw  # BINSTRING


def _py2_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)  # BININT


def _py2_tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


def _py2_dtype(dtype: np.dtype) -> bytes:
    code = f"{dtype.kind}{dtype.itemsize}"
    order = "|" if dtype.itemsize == 1 else "<"
    state = _py2_tuple(
        [_py2_int(3), _py2_str(order), b"N", b"N", b"N", _py2_int(-1), _py2_int(-1), _py2_int(0)]
    )
    return (
        b"cnumpy\ndtype\n"
        + _py2_tuple([_py2_str(code), _py2_int(0), _py2_int(1)])
        + b"R"
        + state
        + b"b"
    )


def _py2_array(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr)
    data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    shape = _py2_tuple([_py2_int(n) for n in arr.shape])
    state = _py2_tuple(
        [
            _py2_int(1),
            shape,
            _py2_dtype(arr.dtype),
            b"\x89",
            b"T" + struct.pack("<i", len(data)) + data,
        ]
    )
    return (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + _py2_tuple([b"cnumpy\nndarray\n", _py2_tuple([_py2_int(0)]), _py2_str("b")])
        + b"R"
        + state
        + b"b"
    )


def _py2_value(value: object) -> bytes:
    if isinstance(value, dict):
        items = b"".join(_py2_value(k) + _py2_value(v) for k, v in value.items())
        return b"}(" + items + b"u"  # EMPTY_DICT MARK ... SETITEMS
    if isinstance(value, str):
        return _py2_str(value)
    if isinstance(value, np.ndarray):
        return _py2_array(value)
    raise TypeError(type(value))


def python2_pickle(obj: dict) -> bytes:
    return b"\x80\x02" + _py2_value(obj) + b"."


# ------------------------------------------------------------------ synthetic subjects

# (label code, seconds); 0 = transient, between conditions
S2_SCHEDULE = [(1, 30), (0, 5), (2, 25), (0, 3), (4, 12), (0, 3), (3, 20), (0, 3), (4, 12)]
S3_SCHEDULE = [(0, 4), (1, 20), (0, 2), (2, 20), (0, 2), (3, 15), (6, 5)]
HEART_HZ = {0: 1.0, 1: 1.2, 2: 1.8, 3: 1.4, 4: 1.0, 6: 1.0}


def _subject_signals(schedule: list[tuple[int, int]], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    label = np.concatenate([np.full(s * CHEST_HZ, code, dtype=np.int32) for code, s in schedule])
    n = len(label)
    t = np.arange(n) / CHEST_HZ
    # Chest EDA: a slow rise (so each window has its own mean) plus small noise.
    eda = 4.0 + 0.02 * t + 0.01 * rng.normal(size=n)
    # Wrist BVP: a pulse whose rate follows the condition.
    beat_hz = np.concatenate([np.full(s * BVP_HZ, HEART_HZ[c]) for c, s in schedule])
    phase = np.cumsum(beat_hz) / BVP_HZ
    bvp = 50 * np.sin(2 * np.pi * phase) + rng.normal(size=len(phase))
    duration = n / CHEST_HZ

    def noise(rate: int, channels: int = 1) -> np.ndarray:
        return rng.normal(size=(int(duration * rate), channels))

    return {
        "signal": {
            "chest": {
                "ACC": noise(CHEST_HZ, 3),
                "ECG": noise(CHEST_HZ),
                "EMG": noise(CHEST_HZ),
                "EDA": eda[:, None],
                "Temp": 33 + noise(CHEST_HZ).astype(np.float32),
                "Resp": noise(CHEST_HZ),
            },
            "wrist": {
                "ACC": noise(WRIST_ACC_HZ, 3),
                "BVP": bvp[:, None],
                # wrist EDA far from the chest EDA: using it by mistake shows
                "EDA": 0.3 + 0.0 * noise(WRIST_4HZ),
                "TEMP": 32 + noise(WRIST_4HZ),
            },
        },
        "label": label,
        "subject": f"S{seed}",
    }


def _panas_row(values: dict[str, float], n_items: int) -> list[str]:
    """A WESAD PANAS row: 1 for every item except those given by WESAD's item name."""
    items = [
        "Active",
        "Distressed",
        "Interested",
        "Inspired",
        "Annoyed",
        "Strong",
        "Guilty",
        "Scared",
        "Hostile",
        "Excited",
        "Proud",
        "Irritable",
        "Enthusiastic",
        "Ashamed",
        "Alert",
        "Nervous",
        "Determined",
        "Attentive",
        "Jittery",
        "Afraid",
    ]
    row = [str(values.get(item, 1)) for item in items]
    return row + ["2"] * (n_items - len(items))  # Stressed, Frustrated, Happy, ..., Sad


# What S2 answered, by WESAD item name; "Annoyed" stands for our "Upset".
S2_ANSWERS = {
    "Base": {"Alert": 2, "Inspired": 2},
    "TSST": {"Nervous": 5, "Distressed": 4, "Annoyed": 3, "Afraid": 2, "Alert": 4},
    "Medi 1": {"Inspired": 3},
    "Fun": {"Excited": 4, "Enthusiastic": 5, "Inspired": 3},
    "Medi 2": {"Determined": 4},
}


def _write_quest(path: Path) -> None:
    order = ["Base", "TSST", "Medi 1", "Fun", "Medi 2", "bRead", "fRead", "sRead"]
    lines = [
        "# Subj;S2;;;;;;;",
        "# ORDER;" + ";".join(order),
        "# START;7.08;39.55;70.19;52.3;85.1;1.2;3.4;5.6",
        "# END;26.32;50.30;77.10;58.2;92.0;2.1;4.3;6.5",
        ";;;;;;;;",
    ]
    for name in order[:5]:
        lines.append(
            "# PANAS;" + ";".join(_panas_row(S2_ANSWERS[name], 26 if name == "TSST" else 24))
        )
    lines += ["# STAI;" + ";".join(["2"] * 6)] * 5
    lines += ["# DIM;5;5"] * 5
    lines += ["# SSSQ;" + ";".join(["3"] * 6)]
    path.write_text("\n".join(lines) + "\n")


def _expected_from_answers(answers: dict[str, float]) -> np.ndarray:
    wesad_name = {label: label for label in PANAS_LABELS} | {"Upset": "Annoyed"}
    scores = np.array([answers.get(wesad_name[label], 1) for label in PANAS_LABELS], float)
    return scores / scores.sum()


@pytest.fixture(scope="module")
def wesad_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("WESAD")
    for seed, schedule in ((2, S2_SCHEDULE), (3, S3_SCHEDULE)):
        folder = root / f"S{seed}"
        folder.mkdir()
        (folder / f"S{seed}.pkl").write_bytes(python2_pickle(_subject_signals(schedule, seed)))
    _write_quest(root / "S2" / "S2_quest.csv")
    (root / "S2" / "S2_readme.txt").write_text("Age: 27\n")
    return root


@pytest.fixture(scope="module")
def wesad(wesad_root: Path):
    return load_wesad(wesad_root, window_s=5.0, hop_s=1.0)


# ------------------------------------------------------------------ tests


def test_test_files_are_in_the_format_python3_readers_load(wesad_root):
    with (wesad_root / "S2" / "S2.pkl").open("rb") as f:
        data = pickle.load(f, encoding="latin1")  # what WESAD's readers do
    seconds = sum(s for _, s in S2_SCHEDULE)
    assert data["signal"]["chest"]["EDA"].shape == (seconds * CHEST_HZ, 1)
    assert data["signal"]["wrist"]["BVP"].shape == (seconds * BVP_HZ, 1)
    assert data["label"].dtype == np.int32
    assert data["subject"] == "S2"


def test_restricted_reader_gives_the_same_arrays(wesad_root):
    path = wesad_root / "S3" / "S3.pkl"
    with path.open("rb") as f:
        plain = pickle.load(f, encoding="latin1")
    safe = read_wesad_pickle(path)
    np.testing.assert_array_equal(safe["signal"]["chest"]["EDA"], plain["signal"]["chest"]["EDA"])
    np.testing.assert_array_equal(safe["label"], plain["label"])


def test_windows_per_condition_segment(wesad):
    def count(trial: str) -> int:
        return int((wesad.trials == trial).sum())

    # a segment of L s holds L - 5 windows of 5 s ending every second
    assert count("S2/baseline0") == 25
    assert count("S2/stress0") == 20
    assert count("S2/meditation0") == 7
    assert count("S2/amusement0") == 15
    assert count("S2/meditation1") == 7
    assert count("S3/baseline0") == 15
    assert count("S3/stress0") == 15
    assert count("S3/amusement0") == 10
    assert len(wesad) == 25 + 20 + 7 + 15 + 7 + 15 + 15 + 10
    assert sorted(set(wesad.subjects)) == ["S2", "S3"]
    assert wesad.spec.names == ("gsr", "ppg")
    assert wesad.spec.labels == PANAS_LABELS
    # the protocol's baseline condition also seeds each participant's statistics
    baseline = wesad.baseline
    assert baseline is not None
    for subject in ("S2", "S3"):
        own = baseline.t_end_s[baseline.subjects == subject]
        np.testing.assert_array_equal(own, wesad.t_end_s[wesad.trials == f"{subject}/baseline0"])


def test_windows_lie_inside_their_segment(wesad):
    starts = np.cumsum([0] + [s for _, s in S2_SCHEDULE])
    s2 = np.flatnonzero(wesad.subjects == "S2")
    stress = [i for i in s2 if wesad.trials[i] == "S2/stress0"]
    seg_start, seg_end = starts[2], starts[3]
    ends = wesad.t_end_s[stress]
    assert ends.min() - 5.0 >= seg_start - 1e-9
    assert ends.max() <= seg_end
    np.testing.assert_allclose(np.diff(ends), 1.0)


def test_features_come_from_chest_eda_and_wrist_bvp(wesad):
    assert wesad.present.all()
    assert np.isfinite(wesad.values["gsr"]).all()
    assert np.isfinite(wesad.values["ppg"]).all()
    # GSR "mean" (2nd statistic) is the chest EDA mean over the window (4 + 0.02 t).
    expected_mean = 4.0 + 0.02 * (wesad.t_end_s - 2.5)
    np.testing.assert_allclose(wesad.values["gsr"][:, 1], expected_mean, atol=0.01)
    # PPG dominant frequency follows the heart rate of the condition.
    peak_hz = wesad.values["ppg"][:, 7 * 3 + 4]
    stress = np.char.find(wesad.trials.astype(str), "stress") >= 0
    baseline = np.char.find(wesad.trials.astype(str), "baseline") >= 0
    np.testing.assert_allclose(peak_hz[stress], 1.8, atol=0.1)
    np.testing.assert_allclose(peak_hz[baseline], 1.2, atol=0.1)


def test_quest_answers_become_the_distribution_of_each_segment(wesad):
    def target(trial: str) -> np.ndarray:
        rows = wesad.targets[wesad.trials == trial]
        assert np.allclose(rows, rows[0])  # one label per segment
        return rows[0]

    np.testing.assert_allclose(target("S2/baseline0"), _expected_from_answers(S2_ANSWERS["Base"]))
    np.testing.assert_allclose(target("S2/stress0"), _expected_from_answers(S2_ANSWERS["TSST"]))
    np.testing.assert_allclose(target("S2/amusement0"), _expected_from_answers(S2_ANSWERS["Fun"]))
    np.testing.assert_allclose(
        target("S2/meditation0"), _expected_from_answers(S2_ANSWERS["Medi 1"])
    )
    np.testing.assert_allclose(
        target("S2/meditation1"), _expected_from_answers(S2_ANSWERS["Medi 2"])
    )
    stress = target("S2/stress0")
    assert PANAS_LABELS[int(np.argmax(stress))] == "Nervous"
    # answers on our items sum to 23; WESAD's "Annoyed" (3) is our "Upset"
    assert stress[PANAS_LABELS.index("Upset")] == pytest.approx(3 / 23)


def test_without_quest_the_fixed_table_labels_each_condition(wesad):
    for condition in ("baseline", "stress", "amusement"):
        rows = wesad.targets[wesad.trials == f"S3/{condition}0"]
        table = np.array(DEFAULT_PANAS[condition])
        np.testing.assert_allclose(rows, np.tile(table / table.sum(), (len(rows), 1)))
    np.testing.assert_allclose(wesad.targets.sum(axis=1), 1.0)


def test_longer_windows_give_fewer_windows(wesad_root):
    data = load_wesad(wesad_root / "S3", window_s=10.0, hop_s=2.0)
    assert set(data.subjects) == {"S3"}
    assert int((data.trials == "S3/baseline0").sum()) == 5  # ends at 10, 12, ..., 18 s of 20
    assert data.spec.modality("gsr").window_s == 10.0


def test_python3_resaved_pickle_loads_too(tmp_path, wesad_root):
    plain = read_wesad_pickle(wesad_root / "S3" / "S3.pkl")
    (tmp_path / "S3").mkdir()
    with (tmp_path / "S3" / "S3.pkl").open("wb") as f:
        pickle.dump(plain, f)  # Python 3's default protocol
    data = load_wesad(tmp_path)
    assert len(data) == 40


def test_pickle_with_a_forbidden_global_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "was_run"
    evil = b"\x80\x02cos\nsystem\n" + _py2_str(f"touch {marker}") + b"\x85R."
    (tmp_path / "S9").mkdir()
    (tmp_path / "S9" / "S9.pkl").write_bytes(evil)
    with pytest.raises(DatasetError, match=r"S9\.pkl: refused to unpickle os\.system"):
        load_wesad(tmp_path)
    assert not marker.exists()


def test_pickle_that_is_not_wesad_is_an_error(tmp_path):
    (tmp_path / "S4").mkdir()
    (tmp_path / "S4" / "S4.pkl").write_bytes(python2_pickle({"subject": "S4"}))
    with pytest.raises(DatasetError, match=r"S4\.pkl: not a WESAD subject file"):
        load_wesad(tmp_path)
    (tmp_path / "S4" / "S4.pkl").write_bytes(b"\x80\x02}(U\x07subject")  # truncated
    with pytest.raises(DatasetError, match=r"S4\.pkl: not a readable WESAD pickle"):
        load_wesad(tmp_path)


def test_missing_folder_and_folder_without_subjects_are_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere: no such folder"):
        load_wesad(tmp_path / "nowhere")
    (tmp_path / "S5").mkdir()  # a subject folder without its pickle
    with pytest.raises(DatasetError, match=r"no WESAD subject files S<n>/S<n>\.pkl"):
        load_wesad(tmp_path)


def test_bad_window_arguments_are_errors(wesad_root):
    with pytest.raises(DatasetError, match="hop_s must be a number > 0"):
        load_wesad(wesad_root, hop_s=0)
