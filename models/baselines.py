"""Baselines HeLo is compared with: the training-mean distribution and a concatenation MLP.

Both take the same inputs as :class:`models.helo.HeLo` (feature dict + ``present``
mask) and return logits, so training, evaluation and checkpoints treat every
model alike.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from helo.models.helo import ModalityInput


@dataclass(frozen=True)
class MeanConfig:
    n_labels: int
    modalities: tuple[ModalityInput, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"n_labels": self.n_labels, "modalities": _mods_to_list(self.modalities)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeanConfig:
        return cls(int(data["n_labels"]), _mods_from_list(data.get("modalities", [])))


class MeanDistribution(nn.Module):
    """Predicts the mean training distribution for every window, whatever the input."""

    def __init__(self, config: MeanConfig):
        super().__init__()
        self.config = config
        self.mean: torch.Tensor
        self.register_buffer("mean", torch.full((config.n_labels,), 1.0 / config.n_labels))

    def fit(self, targets: torch.Tensor) -> None:
        self.mean.copy_(targets.mean(dim=0) / targets.mean(dim=0).sum())

    def forward(self, features: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mean.clamp_min(1e-12)).expand(present.shape[0], -1)


@dataclass(frozen=True)
class MLPConfig:
    """A two-hidden-layer MLP on the concatenated (flattened) features of all modalities."""

    modalities: tuple[ModalityInput, ...]
    n_labels: int
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.3

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["modalities"] = _mods_to_list(self.modalities)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLPConfig:
        return cls(
            modalities=_mods_from_list(data["modalities"]),
            n_labels=int(data["n_labels"]),
            hidden=tuple(int(h) for h in data.get("hidden", (256, 128))),
            dropout=float(data.get("dropout", 0.3)),
        )


class ConcatMLP(nn.Module):
    """Early fusion: concatenate every modality's features (zeros where absent, plus
    the presence flags) and map them to the distribution with an MLP."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        width = sum(math.prod(m.shape) for m in config.modalities) + len(config.modalities)
        layers: list[nn.Module] = []
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, config.n_labels))
        self.net = nn.Sequential(*layers)

    def forward(self, features: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        parts = []
        for i, mod in enumerate(self.config.modalities):
            x = features[mod.name].flatten(1)
            parts.append(torch.where(present[:, i : i + 1], x, torch.zeros((), dtype=x.dtype)))
        parts.append(present.to(parts[0].dtype))
        return self.net(torch.cat(parts, dim=1))


def _mods_to_list(mods: tuple[ModalityInput, ...]) -> list[dict[str, Any]]:
    return [{"name": m.name, "group": m.group, "shape": list(m.shape)} for m in mods]


def _mods_from_list(items: list[dict[str, Any]]) -> tuple[ModalityInput, ...]:
    return tuple(
        ModalityInput(str(m["name"]), str(m["group"]), tuple(int(n) for n in m["shape"]))
        for m in items
    )
