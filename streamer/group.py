"""What a group's predictions say together: the mean distribution and how much the
participants agree.

Agreement is the mean pairwise Jensen-Shannon similarity, ``1 - JSD`` with base-2
logarithms, so it lies in [0, 1]: 1 when every participant feels the same mixture,
0 when no two share any emotion. It is the measure audience and hyperscanning
studies ask for ("did the film move everyone the same way?"), and unlike the
variance of the top emotion it sees mixtures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupState:
    """The group at one window end."""

    t_end: float
    mean: np.ndarray | None  # [K] mean of the participants with a prediction; None if none
    agreement: float | None  # mean pairwise JS similarity; None with fewer than 2
    predicted: int  # participants with a prediction at this window
    participants: int  # participants in the session


def js_similarity(distributions: np.ndarray) -> float | None:
    """Mean pairwise ``1 - JSD`` (base 2) over the rows of ``[N, K]``; None when N < 2."""
    p = np.asarray(distributions, dtype=np.float64)
    n = len(p)
    if n < 2:
        return None
    p = np.clip(p, 0.0, None)
    p = p / p.sum(axis=1, keepdims=True)
    a, b = np.triu_indices(n, k=1)
    m = 0.5 * (p[a] + p[b])
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_am = np.where(p[a] > 0, p[a] * np.log2(p[a] / m), 0.0).sum(axis=1)
        kl_bm = np.where(p[b] > 0, p[b] * np.log2(p[b] / m), 0.0).sum(axis=1)
    jsd = np.clip(0.5 * (kl_am + kl_bm), 0.0, 1.0)
    return float(np.mean(1.0 - jsd))


def group_state(
    t_end: float, distributions: list[np.ndarray | None], participants: int | None = None
) -> GroupState:
    """The group at ``t_end`` from each participant's prediction (None: absent)."""
    present = [d for d in distributions if d is not None]
    stacked = np.stack(present) if present else None
    return GroupState(
        t_end=t_end,
        mean=None if stacked is None else stacked.mean(axis=0),
        agreement=None if stacked is None else js_similarity(stacked),
        predicted=len(present),
        participants=len(distributions) if participants is None else participants,
    )
