"""The shipped demo: a small HeLo model trained on simulated subjects only.

It is *synthetic*: trained on :mod:`models.datasets.synthetic` signals, it shows
the pipeline working end to end and is no model of real emotions. Its test data
are simulated subjects of another seed, never seen in training.
"""

from __future__ import annotations

from pathlib import Path

import helo.models

DEMO_DIR = Path(helo.models.__file__).resolve().parent / "demo"
DEMO_CHECKPOINT = DEMO_DIR / "helo_synthetic_demo.safetensors"
DEMO_TRAIN_CONFIG = DEMO_DIR / "train_demo.toml"
# The same model normalised to the participant: what a session with a baseline uses.
DEMO_PARTICIPANT_CHECKPOINT = DEMO_DIR / "helo_synthetic_demo_participant.safetensors"
DEMO_PARTICIPANT_TRAIN_CONFIG = DEMO_DIR / "train_demo_participant.toml"


def default_checkpoint(baseline_s: float = 0.0) -> Path:
    """The demo model a session runs without ``--checkpoint``: with a baseline (a rest
    at the start), the one normalised to the participant, which is better there (and
    only there: docs/model.md)."""
    if baseline_s > 0 and DEMO_PARTICIPANT_CHECKPOINT.exists():
        return DEMO_PARTICIPANT_CHECKPOINT
    return DEMO_CHECKPOINT


# Held-out simulated subjects for `streamer evaluate --demo` (seed differs from training).
DEMO_TEST_DATA = {"n_subjects": 6, "trials_per_subject": 6, "seed": 1}


def personal_dir() -> Path:
    """Where personal models are written and looked for (``HELO_PERSONAL_DIR``, else
    ``~/.helo/personal``): outside the install, so an upgrade keeps them."""
    import os

    return Path(os.environ.get("HELO_PERSONAL_DIR") or Path.home() / ".helo" / "personal")
