"""The synthetic generator: rates, block-by-block equality, emotions visible in the signals."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY

from helo.models.datasets.synthetic import (
    EMOTIONS,
    SYNTHETIC_STREAMS,
    EmotionScript,
    SubjectProfile,
    SyntheticSession,
)
from helo.models.features.face import BLENDSHAPE_NAMES, FACE_STREAM_CHANNELS
from helo.models.features.stats import feature_names, ppg_statistics


def _pure(emotion: str, share: float = 0.9) -> np.ndarray:
    d = np.full(len(EMOTIONS), (1 - share) / (len(EMOTIONS) - 1))
    d[EMOTIONS.index(emotion)] = share
    return d


def _constant(emotion: str) -> EmotionScript:
    return EmotionScript(starts_s=np.array([0.0]), targets=_pure(emotion)[None])


@pytest.mark.parametrize("name", ["eeg", "gsr", "ppg", "face"])
def test_reading_in_blocks_gives_the_same_samples_as_reading_at_once(name):
    script = EmotionScript.random_trials(3, 10, np.random.default_rng(0))
    whole = SyntheticSession(script, subject=2, seed=3).read(name, 12.0)
    session = SyntheticSession(script, subject=2, seed=3)
    blocks = [session.read(name, t) for t in np.arange(0.07, 12.0, 0.07)]
    blocks.append(session.read(name, 12.0))
    times = np.concatenate([b[0] for b in blocks])
    samples = np.concatenate([b[1] for b in blocks])
    np.testing.assert_array_equal(times, whole[0])
    np.testing.assert_allclose(samples, whole[1], equal_nan=True)


def test_streams_have_realistic_rates_and_channels():
    session = SyntheticSession(EmotionScript.tour(), subject=0)
    assert SYNTHETIC_STREAMS["eeg"].srate_hz == 256
    assert len(SYNTHETIC_STREAMS["eeg"].channels) == 32
    assert SYNTHETIC_STREAMS["gsr"].srate_hz >= 32
    assert SYNTHETIC_STREAMS["ppg"].srate_hz >= 64
    assert SYNTHETIC_STREAMS["face"].srate_hz == 30
    for name, info in SYNTHETIC_STREAMS.items():
        times, samples = session.read(name, 10.0)
        assert len(times) == pytest.approx(10 * info.srate_hz, abs=1)
        assert samples.shape[1] == len(info.channels)
    assert FACE_STREAM_CHANNELS[:52] == BLENDSHAPE_NAMES


def test_frames_without_a_face_have_nan_scores_and_present_zero():
    _, face = SyntheticSession(_constant("happiness"), subject=1).read("face", 120.0)
    present = face[:, 52]
    assert 0.9 < present.mean() < 1.0  # mostly a face, sometimes none
    assert np.isnan(face[present == 0, :52]).all()
    assert np.isfinite(face[present == 1, :52]).all()


def test_a_smile_follows_happiness_and_a_frown_sadness():
    smile = BLENDSHAPE_NAMES.index("mouthSmileLeft")
    frown = BLENDSHAPE_NAMES.index("mouthFrownLeft")
    happy = SyntheticSession(_constant("happiness"), subject=4).read("face", 20.0)[1]
    sad = SyntheticSession(_constant("sadness"), subject=4).read("face", 20.0)[1]
    assert np.nanmean(happy[:, smile]) > np.nanmean(sad[:, smile]) + 0.2
    assert np.nanmean(sad[:, frown]) > np.nanmean(happy[:, frown]) + 0.2


def test_arousal_raises_heart_rate_and_skin_conductance():
    def heart_rate_hz(emotion):
        _, ppg = SyntheticSession(_constant(emotion), subject=6).read("ppg", 60.0)
        windows = ppg[: 11 * 320].reshape(11, 320, 1)
        stats = ppg_statistics(windows, 64, {})
        return stats[:, feature_names(False).index("fft_peak_hz")].mean()

    def conductance(emotion):
        return SyntheticSession(_constant(emotion), subject=6).read("gsr", 60.0)[1].mean()

    assert heart_rate_hz("fear") > heart_rate_hz("sadness") + 0.1  # > 6 bpm
    assert conductance("fear") > conductance("sadness") + 0.3


def test_subjects_differ():
    a, b = SubjectProfile.draw(1), SubjectProfile.draw(2)
    assert abs(a.hr_base_bpm - b.hr_base_bpm) > 0
    assert abs(a.gsr_tonic_us - b.gsr_tonic_us) > 0
    assert not np.allclose(a.eeg_patterns, b.eeg_patterns)
    assert not np.allclose(a.face_weights, b.face_weights)


def test_script_moves_smoothly_towards_each_target():
    script = EmotionScript(
        starts_s=np.array([0.0, 30.0]),
        targets=np.stack([_pure("anger"), _pure("happiness")]),
        tau_s=4.0,
    )
    d = script.at(np.array([0.0, 29.9, 31.0, 60.0]))
    np.testing.assert_allclose(d.sum(axis=1), 1.0)
    assert d[1].argmax() == EMOTIONS.index("anger")
    assert 0.1 < d[2][EMOTIONS.index("happiness")] < 0.9  # in transition
    assert d[3].argmax() == EMOTIONS.index("happiness")


def test_dataset_windows_stay_inside_their_trial(tiny_dataset):
    assert len(tiny_dataset) == 4 * 3 * 16
    rest = TINY.rest_s  # the trials follow the rest (the session's baseline)
    for trial in np.unique(tiny_dataset.trials)[:3]:
        ends = tiny_dataset.t_end_s[tiny_dataset.trials == trial]
        index = int(trial.split("/T")[1])
        assert ends.min() - 5.0 >= rest + index * 20.0 - 1e-9
        assert ends.max() <= rest + (index + 1) * 20.0 + 1e-9
    baseline = tiny_dataset.baseline
    assert baseline is not None
    assert set(baseline.subjects) == set(tiny_dataset.subjects)
    assert baseline.t_end_s.max() <= rest + 1e-9  # rest windows only, never scored
    assert np.allclose(tiny_dataset.targets.sum(axis=1), 1)
    assert tiny_dataset.present[:, :3].all()  # physiology always there


def test_a_rest_before_the_trials_shows_no_emotion():
    rng = np.random.default_rng(0)
    script = EmotionScript.random_trials(3, 20.0, rng, rest_s=30.0)
    np.testing.assert_array_equal(script.intensity(np.array([0.0, 29.9, 30.0])), [0, 0, 1])
    np.testing.assert_allclose(script.at(np.array([10.0]))[0], 1 / 6)  # the initial state
    assert script.starts_s[0] == 30.0
    # at rest the face is its neutral self: no expression beyond the person's bias
    session = SyntheticSession(script, subject=1, seed=0, modalities=("face",))
    _, face = session.read("face", 60.0)
    rest, trial = face[: 25 * 30, :52], face[35 * 30 :, :52]
    assert np.nanmean(rest[:, 1:]) < np.nanmean(trial[:, 1:])
