"""DMER feature files -> WindowDataset, on real .mat files of DMER's layout."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from helo.models.datasets.dmer import PANAS_LABELS, load_dmer
from helo.models.errors import DatasetError

N_FEATURES = 90 + 28 + 27 + 768
EEG, GSR, PPG = slice(0, 90), slice(90, 118), slice(118, 145)
VIDEO = slice(145, 913)


def write_subject(
    path: Path,
    clip_rows: dict[int, int],
    n_clips: int = 4,
    seed: int = 0,
    vids_as_row: bool = False,
    **overrides: np.ndarray,
) -> dict[str, np.ndarray]:
    """A DMER-like subject file: ``clip_rows[vid]`` rows of random features per clip."""
    rng = np.random.default_rng(seed)
    vids = np.concatenate([np.full(n, vid) for vid, n in clip_rows.items()]).astype(float)
    content = {
        "feas": rng.normal(size=(len(vids), N_FEATURES)),
        "vids": vids[None, :] if vids_as_row else vids[:, None],
        "dis_label": rng.integers(1, 6, size=(n_clips, 10)).astype(float),
    }
    content.update(overrides)
    scipy.io.savemat(path, content)
    return content


@pytest.fixture
def dmer_folder(tmp_path: Path) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    folder = tmp_path / "dmer"
    folder.mkdir()
    written = {
        "sub01": write_subject(folder / "sub01.mat", {0: 3, 2: 4}, seed=1),
        "sub02": write_subject(folder / "sub02.mat", {1: 2, 3: 5}, seed=2, vids_as_row=True),
        "sub03": write_subject(folder / "sub03.mat", {0: 2, 1: 2, 2: 2}, seed=3),
    }
    return folder, written


def test_every_row_of_every_subject_becomes_one_window(dmer_folder):
    folder, _ = dmer_folder
    data = load_dmer(folder)
    assert len(data) == 7 + 7 + 6
    assert data.spec.labels == PANAS_LABELS
    assert data.spec.names == ("eeg", "gsr", "ppg", "video")
    assert data.values["eeg"].shape == (20, 18, 5)
    assert data.values["gsr"].shape == (20, 28)
    assert data.values["ppg"].shape == (20, 27)
    assert data.values["video"].shape == (20, 768)
    assert data.present.all()
    assert data.name == "dmer"


def test_blocks_are_cut_channel_major_in_file_order(dmer_folder):
    folder, written = dmer_folder
    data = load_dmer(folder / "sub01.mat")
    feas = written["sub01"]["feas"]
    np.testing.assert_allclose(data.values["eeg"][4], feas[4, EEG].reshape(18, 5), rtol=1e-6)
    assert data.values["eeg"][4, 1, 0] == pytest.approx(feas[4, 5], rel=1e-6)  # channel 2, delta
    np.testing.assert_allclose(data.values["gsr"], feas[:, GSR], rtol=1e-6)
    np.testing.assert_allclose(data.values["ppg"], feas[:, PPG], rtol=1e-6)
    np.testing.assert_allclose(data.values["video"], feas[:, VIDEO], rtol=1e-6)


def test_targets_are_the_clip_rows_of_dis_label_normalised(dmer_folder):
    folder, written = dmer_folder
    data = load_dmer(folder / "sub02.mat")
    dis_label = written["sub02"]["dis_label"]
    np.testing.assert_allclose(data.targets.sum(axis=1), 1.0)
    np.testing.assert_allclose(data.targets[0], dis_label[1] / dis_label[1].sum())
    np.testing.assert_allclose(data.targets[-1], dis_label[3] / dis_label[3].sum())


def test_subjects_trials_and_steps_follow_files_and_clips(dmer_folder):
    folder, _ = dmer_folder
    data = load_dmer(folder)
    assert sorted(set(data.subjects)) == ["sub01", "sub02", "sub03"]
    sub01 = data.subset(np.flatnonzero(data.subjects == "sub01"))
    assert list(sub01.trials) == ["sub01/clip00"] * 3 + ["sub01/clip02"] * 4
    assert list(sub01.t_end_s) == [0, 1, 2, 0, 1, 2, 3]
    assert len(set(data.trials)) == 2 + 2 + 3  # trials never shared across subjects


def test_non_finite_block_masks_only_that_modality_of_that_row(tmp_path):
    rng = np.random.default_rng(5)
    feas = rng.normal(size=(4, N_FEATURES))
    feas[1, GSR.start + 3] = np.nan
    feas[2, VIDEO.start] = np.inf
    write_subject(tmp_path / "s.mat", {0: 4}, feas=feas)
    data = load_dmer(tmp_path / "s.mat")
    assert data.present.tolist() == [
        [True, True, True, True],
        [True, False, True, True],
        [True, True, True, False],
        [True, True, True, True],
    ]
    assert np.isnan(data.values["gsr"][1]).all()
    assert np.isnan(data.values["video"][2]).all()
    assert np.isfinite(data.values["eeg"]).all()


def test_row_with_no_finite_modality_is_dropped(tmp_path):
    feas = np.random.default_rng(6).normal(size=(3, N_FEATURES))
    feas[0, [0, 100, 120, 200]] = np.nan
    write_subject(tmp_path / "s.mat", {1: 3}, feas=feas)
    data = load_dmer(tmp_path / "s.mat")
    assert len(data) == 2
    assert list(data.t_end_s) == [1, 2]


def test_zero_based_vids_index_dis_label_directly(tmp_path):
    labels = np.arange(1, 41, dtype=float).reshape(4, 10)
    write_subject(tmp_path / "s.mat", {0: 1, 3: 1}, dis_label=labels)
    data = load_dmer(tmp_path / "s.mat")
    np.testing.assert_allclose(data.targets[1], labels[3] / labels[3].sum())
    assert list(data.trials) == ["s/clip00", "s/clip03"]
    assert data.name == "dmer"


def test_one_based_vids_are_detected_and_said(tmp_path, caplog):
    labels = np.arange(1, 41, dtype=float).reshape(4, 10)
    write_subject(tmp_path / "s.mat", {1: 2, 4: 1}, dis_label=labels)
    with caplog.at_level(logging.WARNING):
        data = load_dmer(tmp_path / "s.mat")
    np.testing.assert_allclose(data.targets[0], labels[0] / labels[0].sum())
    np.testing.assert_allclose(data.targets[2], labels[3] / labels[3].sum())
    assert list(data.trials) == ["s/clip00", "s/clip00", "s/clip03"]
    assert data.name == "dmer (1-based vids: s)"
    assert "1-based" in caplog.text


def test_vid_outside_dis_label_is_an_error_naming_the_file(tmp_path):
    write_subject(tmp_path / "s.mat", {0: 1, 5: 1})
    with pytest.raises(DatasetError, match=r"s\.mat: clip index 5 .*outside 'dis_label'"):
        load_dmer(tmp_path / "s.mat")


def test_missing_key_is_an_error_naming_file_and_key(tmp_path):
    scipy.io.savemat(
        tmp_path / "s.mat", {"feas": np.zeros((2, N_FEATURES)), "dis_label": np.ones((2, 10))}
    )
    with pytest.raises(DatasetError, match=r"s\.mat: missing key 'vids'"):
        load_dmer(tmp_path)


def test_wrong_feature_width_is_an_error_naming_the_layout(tmp_path):
    write_subject(tmp_path / "s.mat", {0: 2}, feas=np.zeros((2, 900)))
    with pytest.raises(DatasetError, match=r"s\.mat: 'feas' has shape \[2, 900\], expected"):
        load_dmer(tmp_path / "s.mat")


def test_wrong_label_width_is_an_error(tmp_path):
    write_subject(tmp_path / "s.mat", {0: 2}, dis_label=np.ones((4, 6)))
    with pytest.raises(DatasetError, match=r"s\.mat: 'dis_label' has shape \[4, 6\]"):
        load_dmer(tmp_path / "s.mat")


def test_file_that_is_not_a_mat_file_is_an_error(tmp_path):
    (tmp_path / "notes.mat").write_text("these are not MATLAB data\n" * 20)
    with pytest.raises(DatasetError, match=r"notes\.mat: not a readable MATLAB \.mat file") as info:
        load_dmer(tmp_path)
    assert "\n" not in str(info.value)


def test_empty_folder_and_missing_path_are_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"no \.mat files in this folder"):
        load_dmer(tmp_path)
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_dmer(tmp_path / "nowhere")
