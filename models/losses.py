"""HeLo's training loss: KL divergence to the true distribution + label-correlation alignment.

``loss = KL(d_true || p_pred) + lambda * MSE(R, R_true)``, KL averaged over the
batch. ``R`` is the model's learned label correlation (from its label embedding)
and ``R_true`` the correlation of the labels in the batch: by default the cosine
similarity between the columns of the true distributions (K x K), as helo.md
describes; ``"outer"`` is the authors' variant, the mean over samples of each
sample's own normalised outer product ``d d^T / |d|^2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_divergence(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``KL(target || softmax(logits))``."""
    return F.kl_div(F.log_softmax(logits, dim=-1), target, reduction="batchmean")


def label_correlation_target(target: torch.Tensor, kind: str = "columns") -> torch.Tensor:
    """Correlation of the labels of a batch of distributions ``[B, K]`` -> ``[K, K]``."""
    if kind == "columns":
        cols = F.normalize(target, dim=0, eps=1e-8)
        return cols.T @ cols
    if kind == "outer":
        rows = F.normalize(target, dim=1, eps=1e-8)
        return torch.einsum("bi,bj->ij", rows, rows) / target.shape[0]
    raise ValueError(f"unknown label-correlation target {kind!r}; use 'columns' or 'outer'")


def helo_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    learned_correlation: torch.Tensor | None,
    weight: float = 1.0,
    kind: str = "columns",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (for logging)."""
    kl = kl_divergence(logits, target)
    if learned_correlation is None or weight == 0:
        return kl, {"kl": float(kl.detach())}
    align = F.mse_loss(learned_correlation, label_correlation_target(target, kind))
    total = kl + weight * align
    return total, {"kl": float(kl.detach()), "correlation": float(align.detach())}
