"""Gromov-Wasserstein optimal transport between two token sets, batched, in torch.

HeLo mines the heterogeneity between physiological and behavioral tokens with a
Gromov-Wasserstein (GW) plan: GW compares the *structure* of two sets (their
intra-set cost matrices), so it needs no common space between modalities. As in
the paper (after Xu et al. 2019, "Gromov-Wasserstein learning"), the GW problem
is solved by proximal point iterations: each outer step linearises the GW
objective around the current plan and solves that OT problem with IPOT (inexact
proximal point OT, Xie et al. 2019) with uniform marginals.

Differences from the authors' code, on purpose:
- the threshold of the cosine-distance costs is taken per sample, not over the
  whole batch, so a window's plan does not depend on which other windows share
  its batch (live predictions equal replayed ones);
- nothing is moved with ``.cuda()``: tensors stay on the device they come on.

The plan is computed without gradients (as in the paper): it re-weights tokens
but is not itself trained.
"""

from __future__ import annotations

import torch

OT_CHUNK = 32  # windows solved together (see token_transport_plan)


def cosine_cost(x: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Thresholded cosine distances between the tokens of each sample.

    ``x``: ``[B, n, d]`` -> ``[B, n, n]``: ``relu(D - (min + threshold * (max - min)))``
    with ``D = 1 - cos`` and min/max taken per sample; small distances become 0,
    which keeps the structure of the set and drops near-duplicates' noise.
    """
    unit = torch.nn.functional.normalize(x, dim=-1, eps=1e-12)
    dist = 1.0 - torch.bmm(unit, unit.transpose(1, 2))
    flat = dist.flatten(1)
    lo = flat.amin(dim=1).view(-1, 1, 1)
    hi = flat.amax(dim=1).view(-1, 1, 1)
    return torch.relu(dist - (lo + threshold * (hi - lo)))


@torch.no_grad()
def ipot(cost: torch.Tensor, beta: float = 0.1, n_iter: int = 20) -> torch.Tensor:
    """OT plans with uniform marginals by IPOT (one Sinkhorn step per proximal step).

    ``cost``: ``[B, n, m]`` -> plan ``[B, n, m]`` whose columns sum to ``1/m``
    and whose rows sum to about ``1/n``. ``beta`` is the proximal step (smaller:
    closer to the exact, sparse plan).

    Each step is the textbook update ``Q = exp(-C/beta) * T``,
    ``a = 1/(n Q b)``, ``b = 1/(m Q^T a)``, ``T = diag(a) Q diag(b)``, rearranged
    so that the matrix is only scaled in place: row and column normalisation do
    not depend on the overall scale of their target, so the constants n and m
    drop out of the loop, and ``Q b`` is the row sum of ``Q`` scaled by ``b``.
    Five passes over ``[B, n, m]`` a step instead of nine, and fewer torch calls,
    whose overhead dominates the cost of a single live window.
    """
    n_batch, n, m = cost.shape
    kernel = torch.exp(cost * (-1.0 / beta))
    plan = kernel.clone()
    dtype, device = cost.dtype, cost.device
    row_sums = torch.empty((n_batch, n, 1), dtype=dtype, device=device)
    inv_col_sums = torch.empty((n_batch, 1, m), dtype=dtype, device=device)
    col_scale = torch.ones((n_batch, 1, m), dtype=dtype, device=device)  # b
    pending = torch.empty((n_batch, 1, m), dtype=dtype, device=device)  # b / (T's column sums)
    for step in range(n_iter):
        if step:
            # Q = kernel * T, times b; T's own column normalisation is folded in.
            plan.mul_(kernel).mul_(pending)
        torch.sum(plan, dim=2, keepdim=True, out=row_sums)
        plan.mul_(row_sums.reciprocal_())  # a multiply is far cheaper than a divide
        torch.sum(plan, dim=1, keepdim=True, out=inv_col_sums)
        inv_col_sums.reciprocal_()
        col_scale.mul_(inv_col_sums)
        torch.mul(col_scale, inv_col_sums, out=pending)
    return plan.mul_(inv_col_sums.mul_(1.0 / m))


@torch.no_grad()
def gromov_wasserstein(
    cost_s: torch.Tensor,
    cost_t: torch.Tensor,
    beta: float = 0.1,
    n_outer: int = 5,
    n_inner: int = 20,
) -> torch.Tensor:
    """GW plans between sets with intra-set costs ``cost_s [B, n, n]`` and ``cost_t [B, m, m]``.

    Square loss, uniform marginals; ``n_outer`` proximal steps, each solved by
    ``n_inner`` IPOT iterations. Returns ``[B, n, m]``; a sample whose plan is not
    finite (degenerate input) gets the uniform plan.
    """
    n_batch, n, _ = cost_s.shape
    m = cost_t.shape[1]
    # Constant part of the linearised square loss: (Cs^2 p) 1^T + 1 (q^T Ct^2 ^T).
    const = (cost_s**2).mean(dim=2, keepdim=True) + (cost_t**2).mean(dim=2).unsqueeze(1)
    plan = torch.full((n_batch, n, m), 1.0 / (n * m), dtype=cost_s.dtype, device=cost_s.device)
    cost_t_tr = cost_t.transpose(1, 2)
    for _ in range(n_outer):
        linear_cost = torch.baddbmm(const, torch.bmm(cost_s, plan), cost_t_tr, alpha=-2.0)
        plan = ipot(linear_cost, beta=beta, n_iter=n_inner)
    bad = ~torch.isfinite(plan).flatten(1).all(dim=1)
    if bool(bad.any()):
        plan[bad] = 1.0 / (n * m)
    return plan


def gw_objective(cost_s: torch.Tensor, cost_t: torch.Tensor, plan: torch.Tensor) -> torch.Tensor:
    """GW square-loss objective sum_ijkl (Cs_ik - Ct_jl)^2 T_ij T_kl per sample -> ``[B]``."""
    const = (cost_s**2) @ plan.sum(2, keepdim=True) + (
        (cost_t**2) @ plan.sum(1).unsqueeze(-1)
    ).transpose(1, 2)
    tens = const - 2.0 * torch.bmm(torch.bmm(cost_s, plan), cost_t.transpose(1, 2))
    return (tens * plan).flatten(1).sum(1)


@torch.no_grad()
def token_transport_plan(
    source: torch.Tensor,
    target: torch.Tensor,
    beta: float = 0.1,
    n_outer: int = 5,
    n_inner: int = 20,
    threshold: float = 0.1,
) -> torch.Tensor:
    """Row-stochastic GW plan between token sets ``source [B, n, d]`` and ``target [B, m, d]``.

    Each row sums to 1, so ``plan @ tokens`` is a convex re-weighting. Large batches
    are solved ``OT_CHUNK`` windows at a time: the hundred passes of the solver then
    stay in the CPU's cache instead of streaming the whole batch from memory each
    time (measured here: 27 % faster at 64 tokens; the plans are the same, every
    window's plan depending only on its own tokens).
    """
    if len(source) > OT_CHUNK:
        return torch.cat(
            [
                token_transport_plan(
                    source[i : i + OT_CHUNK],
                    target[i : i + OT_CHUNK],
                    beta,
                    n_outer,
                    n_inner,
                    threshold,
                )
                for i in range(0, len(source), OT_CHUNK)
            ]
        )
    if source.shape == target.shape:  # one call for both sets (fewer ops for one window)
        costs = cosine_cost(torch.cat([source, target]), threshold)
        cost_s, cost_t = costs[: len(source)], costs[len(source) :]
    else:
        cost_s, cost_t = cosine_cost(source, threshold), cosine_cost(target, threshold)
    plan = gromov_wasserstein(cost_s, cost_t, beta, n_outer, n_inner)
    return plan / plan.sum(dim=2, keepdim=True).clamp_min(torch.finfo(plan.dtype).tiny)
