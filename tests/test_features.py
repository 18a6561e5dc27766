"""Feature extractors: values that follow from the definitions, and loud failures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helo.models.errors import FeatureError
from helo.models.features.eeg import differential_entropy
from helo.models.features.extract import extract, extract_modality, fit_normalization
from helo.models.features.face import BLENDSHAPE_NAMES, blendshape_statistics
from helo.models.features.spec import FeatureSpec, ModalitySpec
from helo.models.features.stats import feature_names, gsr_statistics, ppg_statistics


def _gaussian_de(variance: float) -> float:
    return 0.5 * np.log(2 * np.pi * np.e * variance)


def test_de_of_a_sinusoid_is_that_of_its_variance_in_its_band_only():
    t = np.arange(5 * 256) / 256
    x = (3.0 * np.sin(2 * np.pi * 10 * t))[None, :, None]  # alpha, variance 4.5
    de = differential_entropy(x, 256, {})[0, 0]
    assert de[2] == pytest.approx(_gaussian_de(4.5), abs=0.02)
    assert np.all(de[[0, 1, 3, 4]] < _gaussian_de(1e-6))  # other bands: nothing


def test_de_of_white_noise_follows_band_width():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 1280, 1)) * 10.0  # variance 100 spread over 0-128 Hz
    de = differential_entropy(x, 256, {}).mean(axis=(0, 1))
    widths = np.array([3, 4, 6, 17, 18])
    assert de == pytest.approx(_gaussian_de(100 * widths / 128), abs=0.08)


def test_de_is_vectorised_over_windows_and_channels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 1280, 4))
    batch = differential_entropy(x, 256, {})
    one = differential_entropy(x[1:2, :, 2:3], 256, {})
    assert batch.shape == (3, 4, 5)
    np.testing.assert_allclose(batch[1, 2], one[0, 0], rtol=1e-10)


def test_gsr_statistics_follow_their_definitions():
    t = np.arange(160) / 32
    s = 5.0 + np.sin(2 * np.pi * 1.2 * t)
    stats = gsr_statistics(s[None, :, None], 32, {})[0]
    named = dict(zip(feature_names(with_psd=True), stats, strict=True))
    assert len(stats) == 28
    assert named["x_mean"] == pytest.approx(s.mean())
    assert named["x_max"] == pytest.approx(s.max())
    assert named["x_median"] == pytest.approx(np.median(s))
    assert named["fft_peak_hz"] == pytest.approx(1.2, abs=0.2)
    # 6 cycles in 5 s: 6 local maxima among 160 samples
    assert named["x_max_ratio"] == pytest.approx(6 / 160, abs=1 / 160)
    assert named["dx_mean"] == pytest.approx(np.diff(s).mean())


def test_ppg_statistics_find_the_heart_rate():
    t = np.arange(320) / 64
    rate_hz = 72 / 60
    pulse = np.exp(-(((t * rate_hz) % 1 - 0.2) ** 2) / 0.005)
    stats = ppg_statistics((pulse + 0.3 * t)[None, :, None], 64, {})[0]  # drift is filtered out
    named = dict(zip(feature_names(with_psd=False), stats, strict=True))
    assert len(stats) == 27
    assert named["fft_peak_hz"] == pytest.approx(rate_hz, abs=0.2)
    assert abs(named["x_mean"]) < 0.05  # band-pass removed the offset and the drift


def test_face_statistics_skip_frames_without_a_face():
    x = np.full((1, 10, 52), 0.2)
    x[0, :5, 44] = 0.9  # mouthSmileLeft high in the face frames
    x[0, 5:] = np.nan  # no face in the last five frames
    stats = blendshape_statistics(x, 30, {"stats": ["mean", "max"]})[0]
    assert stats[44] == pytest.approx(0.9)  # mean over face frames only
    assert stats[52 + 0] == pytest.approx(0.2)
    assert np.isfinite(stats).all()


def test_extract_masks_nan_short_and_faceless_windows_with_reasons(spec):
    rng = np.random.default_rng(2)
    eeg = rng.standard_normal((2, 1280, 32))
    eeg[1, 100, 3] = np.nan
    gsr = rng.standard_normal((2, 40, 1))  # 40 of 160 samples
    face = rng.random((2, 150, 52))
    face[0, :120] = np.nan  # face in 30 of 150 frames (needs half)
    batch = extract(spec, {"eeg": eeg, "gsr": gsr, "ppg": None, "face": face}, normalize=False)
    assert batch.present.tolist() == [[True, False, False, False], [False, False, False, True]]
    assert "NaN" in batch.reasons["eeg"][1]
    assert batch.reasons["gsr"][0] == "gsr: 40 of 160 samples in the window"
    assert batch.reasons["ppg"][0] == "ppg: no stream"
    assert batch.reasons["face"][0] == "face: face in 30 of 150 frames"
    assert np.isnan(batch.values["eeg"][1]).all()  # masked values are never numbers
    assert np.isfinite(batch.values["eeg"][0]).all()


def test_wrong_channel_count_is_an_error_naming_the_modality(spec):
    with pytest.raises(
        FeatureError, match=r"modality 'eeg': window has 8 channel\(s\), the model needs 32"
    ):
        extract_modality(spec.modality("eeg"), np.zeros((1, 1280, 8)), normalize=False)


def test_normalisation_is_fitted_on_present_windows_and_required(spec, tiny_dataset):
    with pytest.raises(FeatureError, match="no normalisation statistics"):
        extract(spec, {"gsr": np.zeros((1, 160, 1))})
    fitted = fit_normalization(spec, tiny_dataset.values, tiny_dataset.present)
    mod = fitted.modality("gsr")
    assert len(mod.norm_mean) == 28
    values = tiny_dataset.values["gsr"][tiny_dataset.present[:, 1]]
    assert mod.norm_mean[0] == pytest.approx(values[:, 0].mean(), rel=1e-5)


def test_spec_round_trips_through_json(spec, tiny_dataset):
    fitted = fit_normalization(spec, tiny_dataset.values, tiny_dataset.present)
    again = FeatureSpec.from_json(fitted.to_json())
    assert again == fitted
    assert again.modality("eeg").channels[:3] == ("Fp1", "AF3", "F7")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["modalities"][0].update(group="brain"), "group must be one of"),
        (lambda d: d["modalities"][0].update(feature_shape=[32, 4]), "does not match eeg_de"),
        (lambda d: d["modalities"][1].update(norm_mean=[0.0]), "norm_mean has 1 values"),
        (lambda d: d["modalities"][1].pop("srate_hz"), r"missing field\(s\) \['srate_hz'\]"),
        (lambda d: d.update(labels=["joy"]), "need 2 or more distinct labels"),
        (lambda d: d.update(version=99), "version 99 is not supported"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(spec, change, message):
    data = json.loads(spec.to_json())
    change(data)
    with pytest.raises(FeatureError, match=message):
        FeatureSpec.from_dict(data)


def test_face_spec_uses_the_52_blendshape_names(spec):
    face = spec.modality("face")
    assert face.channels == BLENDSHAPE_NAMES
    assert face.feature_shape == (156,)
    assert isinstance(face, ModalitySpec)
