"""Temperature calibration: make the predicted distributions as spread as they should be.

A network trained to a minimum of KL on its training subjects is usually too sure
of itself on people it has not seen (here the fitted temperatures are 1.05-1.35):
it puts too much mass on the dominant emotion. One scalar T, fitted after
training on the validation subjects (never the test ones) by minimising their KL,
turns ``softmax(z)`` into ``softmax(z / T)`` (Guo et al., "On calibration of modern
neural networks", ICML 2017). It cannot change which emotion ranks first, only
how sure the model says it is, which for an emotion *distribution* is the output.

T is folded into the model's last linear layer (weight and bias divided by T),
so every path that runs the model (live, replay, evaluation) applies it, and a
checkpoint needs no new field: the calibrated model is an ordinary model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Searched on a log grid: 0.25 .. 4 in steps of 1 %, then the best point kept.
_GRID = np.exp(np.arange(np.log(0.25), np.log(4.0), 0.01))


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The T in [0.25, 4] minimising mean ``KL(targets || softmax(logits / T))``."""
    z = logits.detach().double()
    q = targets.detach().double()
    entropy = torch.sum(torch.special.xlogy(q, q), dim=1).mean()
    temps = torch.as_tensor(_GRID, dtype=torch.float64, device=z.device)
    # [T, B, K] log-probabilities; the grid is small, so one vectorised pass.
    log_p = torch.log_softmax(z.unsqueeze(0) / temps.view(-1, 1, 1), dim=-1)
    kl = entropy - (q.unsqueeze(0) * log_p).sum(-1).mean(-1)
    return float(temps[int(torch.argmin(kl))])


def output_layer(model: nn.Module) -> nn.Linear:
    """The linear layer that produces the logits (the last one the model registers)."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no linear output layer")
    return layers[-1]


@torch.no_grad()
def fold_temperature(model: nn.Module, temperature: float) -> None:
    """Divide the logits of ``model`` by ``temperature`` from now on (in place)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    layer = output_layer(model)
    layer.weight.div_(temperature)
    if layer.bias is not None:
        layer.bias.div_(temperature)
