"""The six label-distribution-learning metrics (Geng, TKDE 2016), over all samples.

Lower is better for Chebyshev, Clark, Canberra and KL; higher for Cosine and
Intersection. Every metric is averaged over *all* test samples (the authors'
evaluation scored only the first sample of each batch). Zeros are guarded with
a small epsilon so that a distribution with an empty class gives a finite value.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

EPS = 1e-10
METRICS = ("chebyshev", "clark", "canberra", "kl", "cosine", "intersection")
LOWER_IS_BETTER = {
    "chebyshev": True,
    "clark": True,
    "canberra": True,
    "kl": True,
    "cosine": False,
    "intersection": False,
}


def per_sample(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric for each sample: ``pred``, ``true`` are ``[N, K]`` distributions."""
    p = np.asarray(pred, dtype=np.float64)
    d = np.asarray(true, dtype=np.float64)
    if p.shape != d.shape or p.ndim != 2:
        raise ValueError(f"predictions {p.shape} and targets {d.shape} must both be [N, K]")
    diff = np.abs(p - d)
    total = p + d + EPS
    return {
        "chebyshev": diff.max(axis=1),
        "clark": np.sqrt(((diff / total) ** 2).sum(axis=1)),
        "canberra": (diff / total).sum(axis=1),
        "kl": (d * (np.log(d + EPS) - np.log(p + EPS))).sum(axis=1),
        "cosine": (p * d).sum(axis=1)
        / (np.linalg.norm(p, axis=1) * np.linalg.norm(d, axis=1) + EPS),
        "intersection": np.minimum(p, d).sum(axis=1),
    }


def evaluate_distributions(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """The six metrics averaged over all samples."""
    if len(pred) == 0:
        raise ValueError("no samples to evaluate")
    return {name: float(values.mean()) for name, values in per_sample(pred, true).items()}


def better(metric: str, a: float, b: float) -> bool:
    """Whether value ``a`` is strictly better than ``b`` for ``metric``."""
    return a < b if LOWER_IS_BETTER[metric] else a > b


ARROWS = {m: ("↓" if LOWER_IS_BETTER[m] else "↑") for m in METRICS}


def metrics_table(
    rows: Mapping[str, Mapping[str, float]], first: str = "model", extra: tuple[str, ...] = ()
) -> str:
    """A markdown table (for the terminal and the reports): one row per entry, one column
    per metric (the arrow says which direction is better), then the ``extra`` keys."""
    header = [first, *[f"{m} {ARROWS[m]}" for m in METRICS], *extra]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for name, values in rows.items():
        cells = [name, *[f"{values[m]:.4f}" for m in METRICS]]
        cells += [_cell(values.get(key)) for key in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
