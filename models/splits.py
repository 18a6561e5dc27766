"""Evaluation splits that never leak a subject or a trial across train and test.

The authors' code split windows at random inside each trial, so windows of the
same trial (and label) sat on both sides. Here:

- subject-independent: folds of whole subjects (leave-subjects-out);
- subject-dependent: for each subject, folds of whole trials, so every subject
  is on both sides but no trial is.
"""

from __future__ import annotations

import numpy as np

from helo.models.errors import DatasetError

Split = tuple[np.ndarray, np.ndarray]


def _group_folds(groups: np.ndarray, n_folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Assign each distinct group to one of ``n_folds`` folds (shuffled, balanced)."""
    unique = np.unique(groups)
    if len(unique) < n_folds:
        raise DatasetError(f"{len(unique)} groups cannot fill {n_folds} folds; use fewer folds")
    order = rng.permutation(unique)
    return [order[f::n_folds] for f in range(n_folds)]


def subject_folds(subjects: np.ndarray, n_folds: int = 5, seed: int = 0) -> list[Split]:
    """(train, test) index pairs; each subject is in exactly one test fold."""
    rng = np.random.default_rng(seed)
    folds = _group_folds(subjects, n_folds, rng)
    return [
        (np.flatnonzero(~np.isin(subjects, f)), np.flatnonzero(np.isin(subjects, f))) for f in folds
    ]


def trial_folds(
    subjects: np.ndarray, trials: np.ndarray, n_folds: int = 5, seed: int = 0
) -> list[Split]:
    """(train, test) index pairs; per subject, each trial is in exactly one test fold."""
    rng = np.random.default_rng(seed)
    test_trials: list[list[str]] = [[] for _ in range(n_folds)]
    for subject in np.unique(subjects):
        own = trials[subjects == subject]
        for f, chunk in enumerate(_group_folds(own, n_folds, rng)):
            test_trials[f] += list(chunk)
    return [
        (np.flatnonzero(~np.isin(trials, t)), np.flatnonzero(np.isin(trials, t)))
        for t in test_trials
    ]


def holdout(groups: np.ndarray, fraction: float, seed: int = 0) -> Split:
    """One (train, validation) split by whole groups, about ``fraction`` held out."""
    rng = np.random.default_rng(seed)
    unique = rng.permutation(np.unique(groups))
    n_val = max(1, round(fraction * len(unique)))
    if n_val >= len(unique):
        raise DatasetError(f"{len(unique)} group(s) are too few to hold out a validation part")
    val = np.isin(groups, unique[:n_val])
    return np.flatnonzero(~val), np.flatnonzero(val)
