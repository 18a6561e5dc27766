"""A person's input calibration: a scale and a shift for every input feature of a
frozen model, learnt from a few labelled trials and folded into its encoders.

What participant normalisation leaves of a person is mostly *how strongly* they
respond: a face that barely shows an emotion, skin that reacts twice as much, EEG
patterns of their own size. Those are gains and offsets on the features, not a new
mapping from features to emotions, so a few trials can estimate them where
fine-tuning the network's layers (thousands of weights) cannot: on unseen simulated
participants, 4 labelled trials cut KL more than three times as much this way as by
moving the head (docs/model.md). The pull towards "no change" is divided by the
number of trials fitted, as a prior worth a fixed amount of evidence would be.

Each encoder begins with a linear layer, so ``W (x * exp(s) + b) + c`` is again a
linear layer of ``x``: :func:`fold_into_encoders` writes the calibration into those
weights, and the personal model is an ordinary checkpoint that live sessions,
replays and traced graphs run unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from helo.models.helo import HeLo, _ChannelLinear
from helo.models.losses import kl_divergence
from helo.models.training import Tensors

Calibration = dict[str, tuple[torch.Tensor, torch.Tensor]]  # modality -> (log scale, shift)


@dataclass(frozen=True)
class CalibrationConfig:
    """How the calibration is fitted (measured on a development population of
    simulated participants, seed 2, not the one the figures report)."""

    steps: int = 30  # full-batch Adam steps; it had settled by 20
    lr: float = 0.03
    strength: float = 0.04  # L2 pull towards no change, divided by the trials fitted
    modality_strength: float = 0.1  # the same for a modality's common gain, relative
    max_windows: int = 256  # windows per step (a random subset beyond that)
    mixup: float = 0.2  # Beta(a, a) mixing of window pairs, features and labels (0: off)


def calibration_shape(model: HeLo, name: str) -> tuple[int, ...]:
    """The shape a modality's calibration can have and still fold into its encoder:
    every input element, except for an encoder shared by all channels (one scale per
    feature then)."""
    encoder = model.encoders[name]
    shape = next(tuple(m.shape) for m in model.config.modalities if m.name == name)
    if encoder.per_channel and not isinstance(encoder.linear, _ChannelLinear):
        return shape[-1:]
    return shape


def identity(model: HeLo) -> Calibration:
    """No change: every scale 1 (log 0), every shift 0."""
    out = {}
    for mod in model.config.modalities:
        shape = calibration_shape(model, mod.name)
        out[mod.name] = (torch.zeros(shape), torch.zeros(shape))
    return out


def calibrated(features: dict[str, torch.Tensor], calibration: Calibration) -> dict:
    """``features`` as the calibrated model reads them."""
    return {k: v * torch.exp(calibration[k][0]) + calibration[k][1] for k, v in features.items()}


def mixed(
    features: dict[str, torch.Tensor],
    present: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    rng: np.random.Generator,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Each window mixed with another of the batch (mixup): ``lam * a + (1 - lam) * b``
    for features and labels, ``lam ~ Beta(alpha, alpha)``; a modality counts where both
    have it. A few trials are a few points in feature space; the calibration should
    hold between them too, not only at them. A pair sharing no modality stays unmixed."""
    n = len(targets)
    partner = torch.as_tensor(rng.permutation(n))
    lam = torch.as_tensor(rng.beta(alpha, alpha, n), dtype=targets.dtype)
    both = present & present[partner]
    shared = both.any(dim=1)
    lam = torch.where(shared, lam, torch.ones_like(lam))
    both = torch.where(shared[:, None], both, present)

    def mix(a: torch.Tensor) -> torch.Tensor:
        w = lam.view(-1, *[1] * (a.dim() - 1))
        return w * a + (1 - w) * a[partner]

    return {k: mix(v) for k, v in features.items()}, both, mix(targets)


def fit_calibration(
    model: HeLo,
    inputs: Tensors,
    n_trials: int,
    config: CalibrationConfig,
    generator: torch.Generator,
) -> Calibration:
    """The calibration that brings ``model`` (frozen, in eval mode) closest to the
    labels of ``inputs`` (KL), pulled towards no change by ``strength / n_trials``.

    Each modality's log scale is its features' own plus one common gain, pulled ten
    times less: how expressive a face or how reactive the skin is shows in all of a
    modality's features at once, so a few trials pin it down better than each feature's
    (with 4 trials of a development population: KL -18.2 % instead of -15.2 %). Windows
    are fitted in mixed pairs (:func:`mixed`; there -20.5 % instead of -18.2 %, and no
    participant more than 0.8 % worse instead of 5.2 %)."""
    model.eval()
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    params = {
        k: (s.clone().requires_grad_(), b.clone().requires_grad_())
        for k, (s, b) in identity(model).items()
    }
    gains = {k: torch.zeros((), requires_grad=True) for k in params}
    leaves = [t for pair in params.values() for t in pair]
    optimizer = torch.optim.Adam([*leaves, *gains.values()], lr=config.lr)
    pull = config.strength / max(1, n_trials)

    def current() -> Calibration:
        return {k: (s + gains[k], b) for k, (s, b) in params.items()}

    n = len(inputs)
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
    try:
        for _ in range(config.steps):
            rows = torch.randperm(n, generator=generator)[: config.max_windows]
            feats, present, targets = inputs.batch(torch.sort(rows).values)
            if config.mixup > 0:
                feats, present, targets = mixed(feats, present, targets, config.mixup, rng)
            optimizer.zero_grad()
            loss = kl_divergence(model(calibrated(feats, current()), present), targets)
            own = torch.stack([(t**2).sum() for t in leaves]).sum()
            common = torch.stack([g**2 for g in gains.values()]).sum()
            loss = loss + pull * (own + config.modality_strength * common)
            loss.backward()
            optimizer.step()
    finally:
        for p, was in zip(model.parameters(), frozen, strict=True):
            p.requires_grad_(was)
    with torch.no_grad():
        return {k: (s.detach(), b.detach()) for k, (s, b) in current().items()}


def fold_into_encoders(model: HeLo, calibration: Calibration) -> None:
    """Write ``calibration`` into the first linear layer of each encoder, in place:
    the model then reads raw features as the calibrated one reads calibrated ones."""
    with torch.no_grad():
        for name, (log_scale, shift) in calibration.items():
            linear = cast(nn.Module, model.encoders[name].linear)
            weight, bias = cast(torch.Tensor, linear.weight), cast(torch.Tensor, linear.bias)
            scale = torch.exp(log_scale)
            if isinstance(linear, _ChannelLinear):  # weight [C, F, d], bias [C, d]
                bias += torch.einsum("cf,cfd->cd", shift, weight)
                weight *= scale[..., None]
            else:  # weight [out, in], on the last axis (per channel) or all (flattened)
                bias += weight @ shift.flatten()
                weight *= scale.flatten()[None, :]
