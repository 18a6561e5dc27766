"""The Gromov-Wasserstein / IPOT solver: plan properties, and agreement with POT."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch

from helo.models import ot as ot_module
from helo.models import ot_kernel
from helo.models.ot import cosine_cost, gromov_wasserstein, gw_objective, ipot, token_transport_plan


def _tokens(seed: int, batch: int, n: int, d: int = 16) -> torch.Tensor:
    return torch.randn(
        batch, n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def test_ipot_plan_is_nonnegative_with_uniform_marginals():
    """Columns are exact after every step; rows converge as the iterations go on."""
    cost = torch.rand(4, 7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    row_error = []
    for n_iter in (20, 200, 1000):
        plan = ipot(cost, beta=0.1, n_iter=n_iter)
        assert (plan >= 0).all()
        torch.testing.assert_close(plan.sum(1), torch.full((4, 5), 1 / 5, dtype=plan.dtype))
        row_error.append((plan.sum(2) - 1 / 7).abs().max().item())
    assert row_error[0] > row_error[1] > row_error[2]
    assert row_error[2] < 1e-9


def test_ipot_approaches_the_exact_ot_plan_of_pot():
    rng = np.random.default_rng(3)
    cost = rng.random((6, 6))
    exact = ot.emd(np.full(6, 1 / 6), np.full(6, 1 / 6), cost)
    ours = ipot(torch.tensor(cost)[None], beta=0.1, n_iter=300)[0].numpy()
    assert np.abs(ours - exact).max() < 1e-3


def test_gw_plan_meets_marginals_within_tolerance():
    # HeLo's case: equal-size token sets, the paper's 5 x 20 iterations.
    cs, ct = cosine_cost(_tokens(1, 3, 12)), cosine_cost(_tokens(2, 3, 12))
    plan = gromov_wasserstein(cs, ct)
    assert (plan >= 0).all()
    torch.testing.assert_close(plan.sum(1), torch.full((3, 12), 1 / 12, dtype=plan.dtype))
    torch.testing.assert_close(
        plan.sum(2), torch.full((3, 12), 1 / 12, dtype=plan.dtype), atol=1e-3 / 12, rtol=0
    )
    # Unequal sizes converge more slowly: with enough inner steps the rows are exact too.
    cs, ct = cosine_cost(_tokens(1, 3, 12)), cosine_cost(_tokens(2, 3, 9))
    plan = gromov_wasserstein(cs, ct, n_inner=500)
    torch.testing.assert_close(plan.sum(2), torch.full((3, 12), 1 / 12, dtype=plan.dtype))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gw_recovers_a_permutation_like_pot(seed):
    """Isomorphic token sets: the optimal GW plan is the permutation; both solvers find it."""
    x = _tokens(seed, 1, 10)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(seed + 100))
    cs, ct = cosine_cost(x), cosine_cost(x[:, perm])
    ours = gromov_wasserstein(cs, ct)[0].numpy()
    p = np.full(10, 0.1)
    theirs = ot.gromov.gromov_wasserstein(cs[0].numpy(), ct[0].numpy(), p, p, "square_loss")
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    assert ours.argmax(1).tolist() == torch.argsort(perm).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_gw_objective_is_no_worse_than_pots_on_random_sets(seed):
    cs, ct = cosine_cost(_tokens(seed, 1, 12)), cosine_cost(_tokens(seed + 50, 1, 12))
    ours = gw_objective(cs, ct, gromov_wasserstein(cs, ct)).item()
    p = np.full(12, 1 / 12)
    pot_plan = ot.gromov.gromov_wasserstein(cs[0].numpy(), ct[0].numpy(), p, p, "square_loss")
    pot = gw_objective(cs, ct, torch.tensor(pot_plan)[None]).item()
    assert ours <= pot * 1.05 + 1e-4


def test_a_windows_plan_does_not_depend_on_its_batch():
    x, y = _tokens(7, 40, 16).float(), _tokens(8, 40, 16).float()
    together = token_transport_plan(x, y)
    alone = token_transport_plan(x[5:6], y[5:6])
    torch.testing.assert_close(together[5:6], alone, atol=1e-6, rtol=1e-4)


def test_token_plan_rows_sum_to_one_and_degenerate_sets_stay_finite():
    x = torch.ones(2, 8, 4)  # all tokens identical: every cost is zero
    plan = token_transport_plan(x, _tokens(9, 2, 8, 4).float())
    assert torch.isfinite(plan).all()
    torch.testing.assert_close(plan.sum(2), torch.ones(2, 8))


def test_compiled_ipot_equals_the_torch_loop_and_ignores_its_batch():
    """float32 on the CPU goes through the compiled loop (models/ot_kernel.py): IPOT's
    numbers to float32 rounding, each window solved alone (so exactly the same plan in
    any batch), non-finite costs still give a non-finite plan (caught downstream)."""
    g = torch.Generator().manual_seed(5)
    cost = torch.rand(9, 64, 48, generator=g) * 0.8
    assert ot_kernel.AVAILABLE  # numba is a dependency: the model uses this loop
    compiled = torch.ops.helo.ipot(cost, 0.1, 20)
    looped = ot_module._ipot(cost, 0.1, 20)
    torch.testing.assert_close(compiled, looped, rtol=2e-6, atol=1e-9)
    torch.testing.assert_close(
        torch.ops.helo.ipot(cost[4:5], 0.1, 20), compiled[4:5], rtol=0, atol=0
    )
    cost[2, 3, 7] = float("nan")
    assert not torch.isfinite(torch.ops.helo.ipot(cost, 0.1, 20)[2]).all()
    tokens = torch.randn(6, 64, 16, generator=g)
    plan = token_transport_plan(tokens, tokens.flip(0))
    torch.testing.assert_close(plan.sum(2), torch.ones(6, 64), atol=1e-5, rtol=0)
