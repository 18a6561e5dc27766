"""HeLo's forward pass as one TorchScript graph per batch shape, for small CPU batches.

A live batch is small (one window, or one per participant of a group) and HeLo is a
few hundred small operations. Run from Python, each operation hands the interpreter
lock back and takes it again; with a group's 32 stream readers waking 1,600 times a
second, a batch of 8 windows took 10.3 ms of wall time for 5.2 ms of work (p99
16.2 ms). A traced graph runs every operation without Python in between: 6.0 ms
(p99 11.1 ms) in the same session (docs/performance.md).

The trace follows the operations of one call, so it holds for inputs like that call's:
the same number of windows (the OT solver chunks by it, tensor sizes are read as
numbers) and the same completeness (a window missing a modality takes the masking
path). Graphs are therefore kept per ``(windows, complete)``. Whatever depends on the
values stays in TorchScript's own control flow (the OT solver, compiled as script,
:mod:`models.ot`), so a traced graph is valid for any values of its shape. Each new
graph is checked at its first call against the model run with the same linears
(:func:`~models.fast_linear.plain_linears`: oneDNN's cannot be traced) and is not used
unless equal. Large batches (a replay at full speed) stay in Python, where oneDNN's
linears are faster; live predictions therefore use MKL's linears where those batches
use oneDNN's, a rounding difference like the one between batch sizes.

``HELO_TRACE=0`` turns it off. TorchScript is deprecated; should tracing fail, the
model runs as before.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings

import torch
from torch import nn

from helo.models import ot
from helo.models.fast_linear import plain_linears
from helo.models.helo import HeLo

log = logging.getLogger(__name__)

MAX_TRACED_BATCH = 32  # larger batches are a replay's: oneDNN's linears win there
MAX_GRAPHS = 16  # batch shapes kept (a group's size changes when someone drops out)


class _Call(nn.Module):
    """``model(features, present)`` as a module with positional tensor inputs to trace."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, features: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.model(features, present)


def can_trace(model: nn.Module, device: torch.device) -> bool:
    """Whether :class:`TracedForward` applies: a HeLo in eval mode on the CPU, the OT
    solver compiled (its data-dependent steps must stay in the graph), not turned off."""
    return (
        os.environ.get("HELO_TRACE", "1") != "0"
        and device.type == "cpu"
        and isinstance(model, HeLo)
        and not model.training
        and isinstance(ot._TRANSPORT_PLAN, torch.jit.ScriptFunction)
    )


class TracedForward:
    """Logits of small batches through cached traced graphs (see the module)."""

    def __init__(self, model: nn.Module):
        self.model = model
        self._graphs: dict[tuple[int, bool], torch.jit.ScriptModule | None] = {}
        self._lock = threading.Lock()

    def __call__(self, features: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        """``model(features, present)``; call under ``torch.inference_mode``."""
        n = len(present)
        if n > MAX_TRACED_BATCH:
            return self.model(features, present)
        key = (n, bool(present.all()))
        with self._lock:
            if key not in self._graphs:
                return self._first_call(key, features, present)
            graph = self._graphs[key]
        if graph is None:  # this shape could not be traced
            return self.model(features, present)
        return graph(features, present)

    def _first_call(
        self, key: tuple[int, bool], features: dict[str, torch.Tensor], present: torch.Tensor
    ) -> torch.Tensor:
        """Trace ``key``'s graph on this call's inputs; keep it if it gives exactly what the
        model gives with the same (plain) linears, else run the model for this shape."""
        graph = None
        try:
            with plain_linears(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer and deprecation warnings
                expected = self.model(features, present)
                graph = torch.jit.trace(_Call(self.model), (features, present), check_trace=False)
                got = graph(features, present)
            if not torch.equal(got, expected):
                log.warning("the traced model differs from the model for %s windows; not used", key)
                graph = None
        except Exception as exc:  # tracing is an optimisation: the model runs as before
            log.debug("model not traced for %s windows: %s", key, exc)
            graph = None
        if len(self._graphs) >= MAX_GRAPHS:
            self._graphs.pop(next(iter(self._graphs)))
        self._graphs[key] = graph
        return got if graph is not None else self.model(features, present)
