"""IPOT's iterations as one compiled loop per window (numba), a torch operator.

Why: in torch each IPOT step is five passes over the batch's ``[B, n, m]`` plans
(two products, a row sum, a scaling, a column sum), each a separate operator that
streams the whole batch through the cache; these passes were a third of the demo
model's time at batches of 128. Compiled as one loop per window, a window's
plan and kernel (2 x 16 KB at 64 tokens) stay in the first-level cache for all
its steps, and a step is two passes over them: 2.2x faster for 32 windows, 2.9x
for 8 (Intel Xeon, one thread; docs/performance.md).

The numbers are IPOT's as :func:`models.ot.ipot` computes them, in the same order
of operations except that row sums are vectorised (their additions reassociated):
plans agree to float32 rounding (relative 3e-7), and every window is solved alone,
so a window's plan does not depend on its batch (live = replay, bit for bit).

Registered as ``torch.ops.helo.ipot`` so that the TorchScript solver
(:mod:`models.ot`) and traced live graphs (:mod:`models.traced`) call it like any
operator. Float32 CPU tensors only; :mod:`models.ot` keeps the torch loop for the
rest (CUDA, float64). Without numba, or with ``HELO_OT_NUMBA=0``, the torch loop
runs everywhere. Compiled on first use (under a second), cached on disk where the
package's folder is writable.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

# numba is a dependency, but a platform without its wheels still runs the torch loop;
# it is imported at the first solve, not with the model (0.15 s off every start).
AVAILABLE = (
    importlib.util.find_spec("numba") is not None and os.environ.get("HELO_OT_NUMBA", "1") != "0"
)

# Reassociation lets the row sums vectorise; NaN and Inf keep their meaning (a plan
# that is not finite is detected after the solve), so no "nnan"/"ninf".
_FASTMATH = {"reassoc", "nsz", "arcp", "contract"}


def _ipot_steps(kernel3: np.ndarray, n_iter: int, out: np.ndarray) -> None:
    """IPOT on each window's ``kernel = exp(-C / beta)`` ``[B, n, m]`` into ``out``:
    :func:`models.ot._ipot`'s steps, one window at a time."""
    n_batch, n, m = kernel3.shape
    col = np.empty(m, np.float32)
    col_scale = np.empty(m, np.float32)
    pending = np.empty(m, np.float32)
    one = np.float32(1.0)
    for b in range(n_batch):
        plan, kernel = out[b], kernel3[b]
        plan[:, :] = 1.0  # IPOT starts from T = 1 (step 0's products by 1 are exact)
        col_scale[:] = 1.0
        pending[:] = 1.0
        for _ in range(n_iter):
            col[:] = 0.0
            for i in range(n):
                s = np.float32(0.0)
                for j in range(m):  # Q = kernel * T, times b; T's column scaling folded in
                    p = plan[i, j] * kernel[i, j] * pending[j]
                    plan[i, j] = p
                    s += p
                r = one / s
                for j in range(m):
                    p = plan[i, j] * r
                    plan[i, j] = p
                    col[j] += p
            for j in range(m):
                inv = one / col[j]
                col[j] = inv
                col_scale[j] *= inv
                pending[j] = col_scale[j] * inv
        last = np.float32(1.0 / m)
        for i in range(n):
            for j in range(m):
                plan[i, j] *= col[j] * last


_compiled: Callable[..., Any] | None = None
_compile_lock = threading.Lock()


def _kernel() -> Callable[..., Any]:
    """The compiled loop (compiled once; cached on disk when a folder is writable)."""
    global _compiled
    with _compile_lock:
        if _compiled is None:
            import numba

            def compiled(cache: bool) -> Callable[..., Any]:
                return numba.njit(
                    _ipot_steps, cache=cache, fastmath=_FASTMATH, error_model="numpy", nogil=True
                )

            try:
                _compiled = compiled(cache=True)
            except Exception:  # no writable cache location: compile in memory
                _compiled = compiled(cache=False)
        return _compiled


def ipot_op(cost: torch.Tensor, beta: float, n_iter: int) -> torch.Tensor:
    """IPOT plans ``[B, n, m]`` of float32 CPU costs (see :func:`models.ot.ipot`)."""
    kernel = torch.mul(cost, -1.0 / beta).exp_().contiguous()  # as models.ot._ipot does
    out = torch.empty_like(kernel)
    _kernel()(kernel.detach().numpy(), int(n_iter), out.detach().numpy())
    return out


# The plain registration: ``torch.library.custom_op`` would import torch._dynamo (over a
# second) at the first call of every process.
_LIBRARY = torch.library.Library("helo", "DEF")
_LIBRARY.define("ipot(Tensor cost, float beta, int n_iter) -> Tensor")
_LIBRARY.impl("ipot", ipot_op, "CPU")
