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

Speed: the solver is some 2,000 small tensor operations a chunk of windows, so the
Python around each call is a good part of its cost, and two worker threads solving
chunks side by side queue for the interpreter. The solver's functions are therefore
compiled with TorchScript (:func:`_script`): the same operations in the same order
(bit-identical plans), run without Python in between.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

import torch

from helo.models import ot_kernel

OT_CHUNK = 32  # windows solved together (see token_transport_plan)

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def cosine_cost(x: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Thresholded cosine distances between the tokens of each sample.

    ``x``: ``[B, n, d]`` -> ``[B, n, n]``: ``relu(D - (min + threshold * (max - min)))``
    with ``D = 1 - cos`` and min/max taken per sample; small distances become 0,
    which keeps the structure of the set and drops near-duplicates' noise.
    """
    return _COSINE_COST(x, threshold)


def _cosine_cost(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """:func:`cosine_cost`. ``1 - cos`` comes out of the product itself and the rest is
    done in place: the same values, four passes over ``[B, n, n]`` fewer."""
    unit = torch.nn.functional.normalize(x, dim=-1, eps=1e-12)
    one = torch.ones((), dtype=x.dtype, device=x.device)
    dist = torch.baddbmm(one, unit, unit.transpose(1, 2), alpha=-1.0)
    flat = dist.flatten(1)  # (torch.aminmax is 10x slower than these two here)
    lo = flat.amin(dim=1).view(-1, 1, 1)
    hi = flat.amax(dim=1).view(-1, 1, 1)
    return dist.sub_(lo + threshold * (hi - lo)).relu_()


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
    return _IPOT(cost, beta, n_iter)


def _ipot(cost: torch.Tensor, beta: float, n_iter: int) -> torch.Tensor:
    """:func:`ipot` (compiled below). The first step needs no copy of the kernel."""
    m = cost.shape[2]
    kernel = torch.mul(cost, -1.0 / beta).exp_()
    # Step 0 (T = 1, so Q = kernel): scaled straight into the plan, no copy of the kernel.
    row_sums = kernel.sum(dim=2, keepdim=True)
    plan = torch.mul(kernel, row_sums.reciprocal_())
    inv_col_sums = plan.sum(dim=1, keepdim=True).reciprocal_()
    col_scale = inv_col_sums.clone()  # b
    pending = col_scale * inv_col_sums  # b / (T's column sums)
    for _ in range(1, n_iter):
        # Q = kernel * T, times b; T's own column normalisation is folded in.
        plan.mul_(kernel).mul_(pending)
        torch.sum(plan, dim=2, keepdim=True, out=row_sums)
        plan.mul_(row_sums.reciprocal_())  # a multiply is far cheaper than a divide
        torch.sum(plan, dim=1, keepdim=True, out=inv_col_sums)
        inv_col_sums.reciprocal_()
        col_scale.mul_(inv_col_sums)
        torch.mul(col_scale, inv_col_sums, out=pending)
    return plan.mul_(inv_col_sums.mul_(1.0 / m))


def _ipot_fused(cost: torch.Tensor, beta: float, n_iter: int) -> torch.Tensor:
    """:func:`ipot` by the compiled loop where it applies (float32 on the CPU,
    :mod:`models.ot_kernel`), else by the torch loop."""
    if cost.dtype == torch.float32 and cost.device.type == "cpu":
        return torch.ops.helo.ipot(cost, beta, n_iter)
    return _ipot(cost, beta, n_iter)


_ipot_any = _ipot_fused if ot_kernel.AVAILABLE else _ipot  # compiled: models/ot_kernel.py


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
    return _GROMOV_WASSERSTEIN(cost_s, cost_t, beta, n_outer, n_inner)[0]


def _gromov_wasserstein(
    cost_s: torch.Tensor, cost_t: torch.Tensor, beta: float, n_outer: int, n_inner: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`gromov_wasserstein`, with the plan's row sums ``[B, n, 1]``.

    The row sums tell a non-finite plan (NaN or inf in a row makes its sum so; the
    entries are at most 1, so a finite row cannot overflow) at a fraction of the cost
    of ``isfinite``, and :func:`token_transport_plan` normalises the rows with them.
    (The first step's ``Cs T Ct^T`` for the uniform ``T`` is an outer product of row
    sums, but computed so it moves one window of the demo by 2.5e-5: left as is.)
    """
    n_batch, n, m = cost_s.shape[0], cost_s.shape[1], cost_t.shape[1]
    # Constant part of the linearised square loss: (Cs^2 p) 1^T + 1 (q^T Ct^2 ^T).
    const = (cost_s**2).mean(dim=2, keepdim=True) + (cost_t**2).mean(dim=2).unsqueeze(1)
    plan = torch.full((n_batch, n, m), 1.0 / (n * m), dtype=cost_s.dtype, device=cost_s.device)
    cost_t_tr = cost_t.transpose(1, 2).contiguous()  # bmm is faster on a contiguous operand
    for _ in range(n_outer):
        linear_cost = torch.baddbmm(const, torch.bmm(cost_s, plan), cost_t_tr, alpha=-2.0)
        plan = _ipot_any(linear_cost, beta, n_inner)
    row_sums = plan.sum(dim=2, keepdim=True)
    bad = ~torch.isfinite(row_sums).flatten(1).all(dim=1)
    if bool(bad.any()):
        plan[bad] = 1.0 / (n * m)
        row_sums = plan.sum(dim=2, keepdim=True)
    return plan, row_sums


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
    args = (beta, n_outer, n_inner, threshold, torch.finfo(source.dtype).tiny)
    if len(source) <= OT_CHUNK:
        return _TRANSPORT_PLAN(source, target, *args)
    return torch.cat(
        [
            _TRANSPORT_PLAN(source[i : i + OT_CHUNK], target[i : i + OT_CHUNK], *args)
            for i in range(0, len(source), OT_CHUNK)
        ]
    )


def _transport_plan(
    source: torch.Tensor,
    target: torch.Tensor,
    beta: float,
    n_outer: int,
    n_inner: int,
    threshold: float,
    tiny: float,
) -> torch.Tensor:
    """:func:`token_transport_plan` of one chunk; ``tiny``: the dtype's smallest normal."""
    n_source = source.shape[0]
    if source.shape == target.shape:  # one call for both sets (fewer ops for one window)
        costs = _cosine_cost(torch.cat([source, target]), threshold)
        cost_s, cost_t = costs[:n_source], costs[n_source:]
    else:
        cost_s, cost_t = _cosine_cost(source, threshold), _cosine_cost(target, threshold)
    plan, row_sums = _gromov_wasserstein(cost_s, cost_t, beta, n_outer, n_inner)
    return plan.div_(row_sums.clamp_min_(tiny))


def _script(fn: _Fn) -> _Fn:
    """``fn`` compiled by TorchScript, or ``fn`` itself where that is not possible.

    The same operations in the same order, without the interpreter between them
    (about a microsecond a call, 2,000 calls a chunk of windows). Measured on the demo
    model (Intel Xeon, 2 cores): one thread, 20 % faster for one window and ~10 % for
    batches of 16 to 256; two worker threads (replay, batches of 64 or 256) 24 %,
    since they no longer wait for each other's Python. ``torch.compile`` took 26 s to
    compile IPOT alone and ran it no faster. TorchScript is deprecated (its warning is
    silenced here); should it go, the plain functions run, as with ``HELO_OT_SCRIPT=0``.
    """
    if os.environ.get("HELO_OT_SCRIPT", "1") == "0":
        return fn
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return cast(_Fn, torch.jit.script(fn))
    except Exception:  # any failure to compile (a PyTorch without it): run the Python
        return fn


_COSINE_COST = _script(_cosine_cost)
_IPOT = _script(_ipot)
_GROMOV_WASSERSTEIN = _script(_gromov_wasserstein)
_TRANSPORT_PLAN = _script(_transport_plan)
