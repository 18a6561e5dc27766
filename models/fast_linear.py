"""Linear layers that run through oneDNN on x86 CPUs at inference.

PyTorch sends a float32 ``F.linear`` on the CPU to MKL's GEMM, which on AMD
processors takes a generic AVX2 path; oneDNN (bundled with PyTorch as
"mkldnn") picks its kernels by the instruction set, so on this project's AMD
EPYC (Zen 4, AVX-512) a large product runs up to 2.2x faster (the Transformer
layer of a batch; 1.15x for the face encoder of one window) with the same
result (bit-identical in the probe here; tested equal within float rounding).
HeLo spends about half of its batched forward pass in linear layers, so this is
the largest single speed-up of the CPU path.

The oneDNN op (``torch.ops.mkldnn._linear_pointwise``, the one PyTorch's own
compiler emits for CPU linears) has no backward, so it is used only where no
gradient is recorded (``eval()`` under ``no_grad``/``inference_mode``) and only
where a probe at import shows it present and equal to ``F.linear``; anywhere
else (training, CUDA, float64, other CPUs, a PyTorch without it) the standard
``F.linear`` runs. ``HELO_ONEDNN=0`` in the environment turns it off.
"""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


def _probe() -> bool:
    """Whether the oneDNN linear exists here and agrees with ``F.linear`` (and, with a
    fused GELU, with ``F.gelu(F.linear)``)."""
    if os.environ.get("HELO_ONEDNN", "1") == "0":
        return False
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False  # measured only on x86; elsewhere keep PyTorch's own choice
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        op = torch.ops.mkldnn._linear_pointwise
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(3, 5, 7, generator=gen)
        w = torch.randn(4, 7, generator=gen)
        b = torch.randn(4, generator=gen)
        with torch.no_grad():
            same = torch.allclose(op(x, w, b, "none", [], ""), F.linear(x, w, b), atol=1e-5)
            same &= torch.allclose(op(x, w, None, "none", [], ""), F.linear(x, w), atol=1e-5)
            fused = op(x, w, b, "gelu", [], "none")  # the exact (erf) GELU, see linear_gelu
            same &= torch.allclose(fused, F.gelu(F.linear(x, w, b)), atol=1e-5)
        return bool(same)
    except (AttributeError, RuntimeError):
        return False


_enabled = _probe()
# oneDNN's call costs ~10 us more than MKL's (measured here), so small products stay
# with F.linear: from about a million multiply-adds on, oneDNN is ahead.
MIN_MULTIPLY_ADDS = 1 << 20


_local = threading.local()  # .plain: this thread runs F.linear only (plain_linears)


@contextmanager
def plain_linears() -> Iterator[None]:
    """``F.linear`` for every linear of this thread inside the block: the operations a
    trace records (:mod:`models.traced`), whose output is checked against this."""
    previous = getattr(_local, "plain", False)
    _local.plain = True
    try:
        yield
    finally:
        _local.plain = previous


def onednn_enabled() -> bool:
    """Whether inference-time linears go through oneDNN in this process."""
    return _enabled


def set_onednn(enabled: bool) -> bool:
    """Turn the oneDNN path on or off (on only where the probe passes); returns the
    previous setting. For benchmarks and tests that compare the two paths."""
    global _enabled
    previous = _enabled
    _enabled = bool(enabled) and _probe()
    return previous


def _use_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Where oneDNN is safe (no gradient: it has no backward) and faster (large products)."""
    return (
        _enabled
        and x.dtype == torch.float32
        and x.device.type == "cpu"
        and weight.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not torch.jit.is_tracing()  # the op's list arguments cannot be traced
        and not getattr(_local, "plain", False)
        and x.numel() * weight.shape[0] >= MIN_MULTIPLY_ADDS
    )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear``, through oneDNN where it is faster (large products) and no gradient
    is needed."""
    if _use_onednn(x, weight):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


def linear_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.gelu(F.linear(x, weight, bias))`` (exact, erf GELU); on the oneDNN path the GELU
    is applied as the product is written, which saves a pass over (and an allocation of)
    the feed-forward's hidden activations."""
    if _use_onednn(x, weight):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "none")
    return F.gelu(F.linear(x, weight, bias))


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same checkpoints) whose inference uses :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
