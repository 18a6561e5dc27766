"""The synthetic benchmark: simulated subjects and trials cut into feature windows.

Each subject watches ``trials_per_subject`` "clips" of ``trial_s`` seconds, each
with its own mixed target distribution (see :mod:`models.datasets.synthetic`).
Windows end every ``hop_s`` seconds; a window belongs to the trial it lies in
(windows across a trial boundary are dropped so that a trial-level split never
shares a window), and its label is the mean true distribution over the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helo.models.datasets.synthetic import (
    EMOTIONS,
    SYNTHETIC_STREAMS,
    EmotionScript,
    SyntheticSession,
)
from helo.models.datasets.windows import (
    BaselineWindows,
    WindowDataset,
    features_from_recording,
    window_ends,
)
from helo.models.features.face import BLENDSHAPE_NAMES
from helo.models.features.spec import DEFAULT_EEG_BANDS_HZ, FACE_STATS, FeatureSpec, ModalitySpec


def synthetic_spec(window_s: float = 5.0, hop_s: float = 0.25) -> FeatureSpec:
    """Spec of the demo model: 32-ch EEG DE, GSR and PPG statistics, face blendshape stats."""
    eeg, gsr, ppg, face = (SYNTHETIC_STREAMS[k] for k in ("eeg", "gsr", "ppg", "face"))
    return FeatureSpec(
        modalities=(
            ModalitySpec(
                "eeg",
                "physiological",
                "eeg_de",
                eeg.stream_type,
                eeg.channels,
                eeg.srate_hz,
                window_s,
                (len(eeg.channels), len(DEFAULT_EEG_BANDS_HZ)),
                params={"bands_hz": DEFAULT_EEG_BANDS_HZ},
            ),
            ModalitySpec(
                "gsr",
                "physiological",
                "gsr_stats",
                gsr.stream_type,
                gsr.channels,
                gsr.srate_hz,
                window_s,
                (28,),
            ),
            ModalitySpec(
                "ppg",
                "physiological",
                "ppg_stats",
                ppg.stream_type,
                ppg.channels,
                ppg.srate_hz,
                window_s,
                (27,),
                params={"band_hz": [0.5, 8.0]},
            ),
            ModalitySpec(
                "face",
                "behavioral",
                "face_stats",
                face.stream_type,
                BLENDSHAPE_NAMES,
                face.srate_hz,
                window_s,
                (len(BLENDSHAPE_NAMES) * len(FACE_STATS),),
                params={"stats": list(FACE_STATS)},
                min_valid_fraction=0.5,
            ),
        ),
        labels=EMOTIONS,
        hop_s=hop_s,
    )


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of a synthetic data set."""

    n_subjects: int = 16
    trials_per_subject: int = 12
    trial_s: float = 40.0
    hop_s: float = 1.0
    seed: int = 0
    window_s: float = 5.0
    rest_s: float = 60.0  # a neutral rest before the trials: the session's baseline


def make_synthetic_dataset(config: SyntheticConfig = SyntheticConfig()) -> WindowDataset:
    """Simulate every subject and compute their feature windows (and those of their
    rest, which seed participant normalisation and are never trained on)."""
    spec = synthetic_spec(config.window_s)
    parts = []
    for subject in range(config.n_subjects):
        name = f"sim{config.seed}-S{subject:02d}"  # the seed names a different population
        rng = np.random.default_rng([config.seed, subject, 17])
        script = EmotionScript.random_trials(
            config.trials_per_subject, config.trial_s, rng, rest_s=config.rest_s
        )
        session = SyntheticSession(script, subject=config.seed * 1000 + subject, seed=config.seed)
        duration = config.rest_s + config.trials_per_subject * config.trial_s
        streams = {}
        for mod in spec.modalities:
            times, samples = session.read(mod.name, duration)
            cols = [SYNTHETIC_STREAMS[mod.name].channels.index(c) for c in mod.channels]
            streams[mod.name] = (times, samples[:, cols])
        per_trial, trials = [], []
        for trial in range(config.trials_per_subject):
            t0 = config.rest_s + trial * config.trial_s
            trial_ends = window_ends(t0, t0 + config.trial_s, config.window_s, config.hop_s)
            per_trial.append(trial_ends)
            trials += [f"{name}/T{trial:02d}"] * len(trial_ends)
        ends = np.concatenate(per_trial)
        values, present = features_from_recording(spec, streams, ends)
        targets = np.array([script.mean_over(e - config.window_s, e) for e in ends])
        rest_ends = window_ends(0.0, config.rest_s, config.window_s, config.hop_s)
        baseline = None
        if len(rest_ends):
            rest_values, rest_present = features_from_recording(spec, streams, rest_ends)
            baseline = BaselineWindows(
                rest_values, rest_present, np.array([name] * len(rest_ends)), rest_ends
            )
        parts.append(
            WindowDataset(
                spec=spec,
                values=values,
                present=present,
                targets=targets,
                subjects=np.array([name] * len(ends)),
                trials=np.array(trials),
                t_end_s=ends,
                name="synthetic",
                baseline=baseline,
            )
        )
    return WindowDataset.concat(parts, name="synthetic")
