"""Figures of ``streamer bench --only personal``: what participant normalisation costs
per window, and how long ``streamer adapt`` takes for one participant.

- running normalisation: one window of every modality of the model through a
  participant's running statistics (update and standardise), p50/p99, against the
  global z-score of the same window;
- adapt: one simulated participant's 10-minute session (a 60 s rest, then 13 trials
  of 40 s, windows every second) fine-tuned from the model, on this machine's CPU;
- personalisation: the model (trained on other people) fine-tuned on k = 2, 4, 8
  labelled trials of each of 12 simulated participants it never saw (another seed),
  both scored on each participant's remaining trials (at k = 4 also with only the
  head or only the encoders moving), with how far the pooled change would move with
  other participants (a bootstrap interval) and each participant's own.
"""

from __future__ import annotations

import time

import numpy as np

from helo.models.checkpoint import Checkpoint
from helo.models.datasets.synthetic_windows import SyntheticConfig, make_synthetic_dataset
from helo.models.features.participant import FeatureNormaliser
from helo.models.features.spec import FeatureSpec
from helo.models.personal import (
    AdaptConfig,
    PersonalRow,
    adapt_model,
    adapt_subject,
    personal_plans,
    pooled_row,
)
from helo.streamer.bench.compute import percentiles


def normalisation_cost(spec: FeatureSpec, repeats: int) -> dict:
    """Per-window cost of the participant normalisation while it calibrates (the
    statistics move) and once settled (they stay), and of the global z-score."""
    rng = np.random.default_rng(0)
    present = np.ones((1, len(spec.modalities)), dtype=bool)
    out: dict[str, dict[str, float] | int] = {}
    for kind in ("participant", "global"):
        normaliser = FeatureNormaliser(spec.with_normalisation(kind))
        warmup = int(normaliser.warmup_s / 0.25)  # windows until it settles, hop 0.25 s
        phases: dict[str, list[float]] = {"calibrating": [], "settled": []}
        for i in range(warmup + repeats):
            values = {
                m.name: rng.normal(size=(1, *m.feature_shape)).astype(np.float32) * 0.1
                + np.asarray(m.norm_mean, dtype=np.float32).reshape(m.feature_shape)
                for m in spec.modalities
            }
            started = time.perf_counter()
            normaliser.apply(np.array([5.0 + 0.25 * i]), values, present)
            took = time.perf_counter() - started
            if i >= 20:  # the first calls allocate
                phases["calibrating" if i < warmup else "settled"].append(took)
        if kind == "participant":
            out["participant_calibrating"] = percentiles(phases["calibrating"])
            out["participant_settled"] = percentiles(phases["settled"])
        else:
            out["global"] = percentiles(phases["calibrating"] + phases["settled"])
    out["features"] = int(sum(m.n_features for m in spec.modalities))
    return out


def adapt_time(ckpt: Checkpoint, config: AdaptConfig | None = None) -> dict:
    """``streamer adapt`` on one participant's simulated 10-minute session."""
    data = make_synthetic_dataset(
        SyntheticConfig(n_subjects=1, trials_per_subject=13, trial_s=40.0, hop_s=1.0, seed=7)
    )
    result = adapt_model(ckpt, data, config or AdaptConfig())
    return {
        "windows": len(data),
        "trials": len(result.trials),
        "validation_trials": len(result.validation_trials),
        "kl_measured": result.checked_on(),
        "seconds": result.seconds,
        "epochs_to_best": result.best_epoch,
        "kl_before": result.kl_before,
        "kl_after": result.kl_after,
        "moving": result.config.moving,
    }


# Participants of the personal figures. Until 2026-12-07 there were 6 (the first six
# of these twelve); populations of six gave from -8.8 to -22.9 % at k = 4.
PARTICIPANTS = 12


def personal_accuracy(ckpt: Checkpoint, ks: tuple[int, ...] = (2, 4, 8)) -> list[PersonalRow]:
    """Personal adaptation of ``ckpt`` on unseen simulated participants (see the module)."""
    data = make_synthetic_dataset(
        SyntheticConfig(
            n_subjects=PARTICIPANTS, trials_per_subject=12, trial_s=40.0, hop_s=1.0, seed=1
        )
    )
    plans = personal_plans(ks)
    pooled: dict[tuple[int, str], dict[str, list]] = {}
    for i, subject in enumerate(np.unique(data.subjects)):
        own = data.subset(np.flatnonzero(data.subjects == subject))
        adapt_subject(ckpt, own, plans, [0, i], pooled)
    return [pooled_row(k, moving, bucket) for (k, moving), bucket in pooled.items()]
