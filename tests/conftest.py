"""Shared fixtures: small real data (simulated subjects) and the demo feature spec."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from models.datasets.synthetic_windows import (
    SyntheticConfig,
    make_synthetic_dataset,
    synthetic_spec,
)

TINY = SyntheticConfig(n_subjects=4, trials_per_subject=3, trial_s=20.0, hop_s=1.0, seed=5)


@pytest.fixture(scope="session")
def spec():
    return synthetic_spec()


@pytest.fixture(scope="session")
def tiny_dataset():
    """4 simulated subjects x 3 trials x 16 windows, all four modalities."""
    return make_synthetic_dataset(TINY)
