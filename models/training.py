"""Training of HeLo (and the baselines) on a window data set.

As in the paper: Adam (lr 1e-3, weight decay 1e-5) with an exponential learning
rate decay per epoch, KL + label-correlation loss. Beyond it: early stopping on
a validation part split by whole subjects (or trials), fixed seeds, and random
modality dropout, so that the model learns to predict from any non-empty subset
of modalities. Normalisation statistics are fitted on the training part only and
travel in the returned spec.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from helo.models.baselines import ConcatMLP, MeanConfig, MeanDistribution, MLPConfig
from helo.models.calibration import fit_temperature, fold_temperature
from helo.models.checkpoint import EmotionModel
from helo.models.datasets.windows import WindowDataset
from helo.models.errors import HeloError
from helo.models.features.extract import fit_normalization
from helo.models.features.participant import FeatureNormaliser, normalise_sequences
from helo.models.features.spec import NORMALISATIONS, FeatureSpec
from helo.models.helo import HeLo, HeLoConfig, ModalityInput
from helo.models.losses import helo_loss, kl_divergence


@dataclass
class TrainConfig:
    """Everything that decides a training run (saved with the checkpoint)."""

    model: str = "helo"  # helo | concat_mlp | mean
    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-5
    lr_decay: float = 0.99
    patience: int = 12
    val_fraction: float = 0.15
    val_by: str = "subject"  # subject | trial
    seed: int = 0
    correlation_weight: float = 1.0
    correlation_target: str = "columns"  # columns | outer
    modality_dropout: float = 0.5  # share of training windows given a random modality subset
    normalisation: str = "global"  # global | participant (models/features/participant.py)
    ema_decay: float = 0.0  # > 0: validate and keep an exponential moving average of the weights
    calibrate: bool = True  # fit a softmax temperature on the validation part after training
    accelerator: str = "auto"  # auto | cpu | cuda
    threads: int | None = None
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in ("helo", "concat_mlp", "mean"):
            raise HeloError(
                f"train config: model must be helo, concat_mlp or mean, got {self.model!r}"
            )
        if self.val_by not in ("subject", "trial"):
            raise HeloError(
                f"train config: val_by must be 'subject' or 'trial', got {self.val_by!r}"
            )
        if self.normalisation not in NORMALISATIONS:
            raise HeloError(
                f"train config: normalisation must be one of {NORMALISATIONS}, "
                f"got {self.normalisation!r}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise HeloError(f"train config: ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.modality_dropout <= 1.0:
            raise HeloError(
                f"train config: modality_dropout must be in [0, 1], got {self.modality_dropout}"
            )
        for key in ("epochs", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise HeloError(f"train config: {key} must be >= 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise HeloError(
                f"train config: unknown key(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**data)


@dataclass
class TrainResult:
    model: EmotionModel
    spec: FeatureSpec  # with the normalisation fitted on the training part
    history: list[dict[str, float]]
    best_epoch: int
    seconds: float
    config: TrainConfig
    temperature: float = 1.0  # folded into the output layer (models/calibration.py)

    def metadata(self) -> dict[str, Any]:
        return {
            "train_config": asdict(self.config),
            "best_epoch": self.best_epoch,
            "temperature": self.temperature,
            "epochs_run": len(self.history),
            "seconds": round(self.seconds, 1),
            "history": self.history,
        }


def model_device(model: nn.Module) -> torch.device:
    """The device a model's weights (or buffers) live on."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def resolve_device(accelerator: str) -> torch.device:
    """``auto`` picks CUDA when there is a GPU, else the CPU; ``cuda`` without one is an error."""
    if accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise HeloError("--accelerator cuda: no CUDA device is available (torch sees none)")
    if accelerator not in ("cpu", "cuda"):
        raise HeloError(f"--accelerator must be auto, cpu or cuda, got {accelerator!r}")
    return torch.device(accelerator)


@dataclass
class Tensors:
    """A data set on a device, normalised, NaN replaced by 0 where absent."""

    features: dict[str, torch.Tensor]
    present: torch.Tensor
    targets: torch.Tensor

    def batch(
        self, idx: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        return {k: v[idx] for k, v in self.features.items()}, self.present[idx], self.targets[idx]

    def __len__(self) -> int:
        return len(self.targets)


def model_inputs(data: WindowDataset, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """The model's input features of every window of ``data`` (NaN where absent),
    normalised as ``spec`` says: participant statistics run over each subject's
    windows in order, seeded by its baseline, exactly as a live session would."""
    if spec.per_participant:
        seeds = data.baseline.seeds() if data.baseline is not None else None
        batch = normalise_sequences(
            spec, data.values, data.present, data.t_end_s, data.subjects, seeds
        )
    else:
        batch = FeatureNormaliser(spec).apply(data.t_end_s, data.values, data.present)
    return batch.values


def to_tensors(data: WindowDataset, spec: FeatureSpec, device: torch.device) -> Tensors:
    features = {
        name: torch.as_tensor(np.nan_to_num(values), dtype=torch.float32, device=device)
        for name, values in model_inputs(data, spec).items()
    }
    return Tensors(
        features=features,
        present=torch.as_tensor(data.present, device=device),
        targets=torch.as_tensor(data.targets, dtype=torch.float32, device=device),
    )


def build_model(kind: str, spec: FeatureSpec, options: dict[str, Any]) -> EmotionModel:
    mods = tuple(ModalityInput(m.name, m.group, tuple(m.feature_shape)) for m in spec.modalities)
    if kind == "helo":
        return HeLo(HeLoConfig.from_spec(spec, **options))
    if kind == "concat_mlp":
        return ConcatMLP(MLPConfig(modalities=mods, n_labels=spec.n_labels, **options))
    return MeanDistribution(MeanConfig(n_labels=spec.n_labels, modalities=mods))


def modality_subsets(n_modalities: int) -> torch.Tensor:
    """All non-empty subsets of ``n_modalities`` as a ``[2^M - 1, M]`` bool matrix."""
    rows = [bits for bits in itertools.product([False, True], repeat=n_modalities) if any(bits)]
    return torch.tensor(rows, dtype=torch.bool)


def drop_modalities(
    present: torch.Tensor, share: float, subsets: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Give a ``share`` of the windows a random non-empty subset of their modalities."""
    if share <= 0 or present.shape[1] < 2:
        return present
    n = present.shape[0]
    pick = torch.randint(len(subsets), (n,), generator=generator).to(present.device)
    chosen = subsets.to(present.device)[pick] & present
    apply = (torch.rand(n, generator=generator) < share).to(present.device)
    apply &= chosen.any(dim=1)
    return torch.where(apply.unsqueeze(1), chosen, present)


def set_seeds(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def train_model(
    train: WindowDataset,
    val: WindowDataset | None,
    config: TrainConfig,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``train``, early-stopping on ``val`` (if given)."""
    started = time.perf_counter()
    device = resolve_device(config.accelerator)
    generator = set_seeds(config.seed)
    spec = fit_normalization(train.spec, train.values, train.present)
    spec = spec.with_normalisation(config.normalisation)
    train_t = to_tensors(train, spec, device)
    val_t = to_tensors(val, spec, device) if val is not None and len(val) else None
    model = build_model(config.model, spec, config.model_options).to(device)
    if isinstance(model, MeanDistribution):
        model.fit(train_t.targets)
        model.eval()
        return TrainResult(model, spec, [], 0, time.perf_counter() - started, config)
    history, best_epoch = fit_epochs(model, train_t, val_t, config, generator, progress, log)
    temperature = 1.0
    if config.calibrate and val_t is not None:
        logits, targets = validation_logits(model, val_t)
        temperature = fit_temperature(logits, targets)
        fold_temperature(model, temperature)
        if log is not None:
            log(f"temperature={temperature:.3f} (fitted on the validation part)")
    seconds = time.perf_counter() - started
    return TrainResult(model, spec, history, best_epoch, seconds, config, temperature)


def fit_epochs(
    model: nn.Module,
    train_t: Tensors,
    val_t: Tensors | None,
    config: TrainConfig,
    generator: torch.Generator,
    progress: bool,
    log: Callable[[str], None] | None,
    initial_score: float = math.inf,
) -> tuple[list[dict[str, float]], int]:
    """Epochs with early stopping on the validation KL; leaves ``model`` with the best
    weights kept, in eval mode. Returns the history and the best epoch (0: no epoch beat
    ``initial_score``, the starting weights' validation KL, so they are kept)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    # The weights judged and kept: the model's own, or their moving average, which
    # smooths the epoch-to-epoch noise that early stopping on few subjects picks up.
    ema = None
    if config.ema_decay > 0:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
    kept = ema.module if ema is not None else model
    step = _EpochStep(model, optimizer, ema, config, generator, len(train_t.present[0]))
    history: list[dict[str, float]] = []
    best = (initial_score, 0, copy.deepcopy(kept.state_dict()))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.epochs, desc=f"train {config.model}", unit="epoch", leave=False)
    for epoch in range(1, config.epochs + 1):
        losses = step(train_t)
        scheduler.step()
        row: dict[str, float] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], **losses}
        if val_t is not None:
            row["val_kl"] = validation_kl(kept, val_t)
        history.append(row)
        score = row.get("val_kl", row.get("train_kl", math.inf))
        if score < best[0] - 1e-5:
            best = (score, epoch, copy.deepcopy(kept.state_dict()))
        _report_epoch(row, bar, log)
        if val_t is not None and epoch - best[1] >= config.patience:
            break
    if bar is not None:
        bar.close()
    model.load_state_dict(best[2])
    model.eval()
    return history, best[1]


class _EpochStep:
    """One pass over the training windows in a random order, with random modality
    dropout; returns the mean loss terms (``train_kl``, ...)."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        ema: AveragedModel | None,
        config: TrainConfig,
        generator: torch.Generator,
        n_modalities: int,
    ):
        self.model, self.optimizer, self.ema = model, optimizer, ema
        self.config, self.generator = config, generator
        self.subsets = modality_subsets(n_modalities)
        use_corr = isinstance(model, HeLo) and model.config.use_label_correlation
        self.correlated = model if isinstance(model, HeLo) and use_corr else None

    def __call__(self, data: Tensors) -> dict[str, float]:
        config, model = self.config, self.model
        model.train()
        order = torch.randperm(len(data), generator=self.generator).to(data.present.device)
        totals: dict[str, float] = {}
        n_batches = 0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            if len(idx) < 2:
                continue
            feats, present, targets = data.batch(idx)
            present = drop_modalities(
                present, config.modality_dropout, self.subsets, self.generator
            )
            logits = model(feats, present)
            corr = self.correlated.label_correlation() if self.correlated is not None else None
            loss, parts = helo_loss(
                logits, targets, corr, config.correlation_weight, config.correlation_target
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(model)
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + value
            n_batches += 1
        return {f"train_{k}": v / max(n_batches, 1) for k, v in totals.items()}


def _report_epoch(row: dict[str, float], bar: Any, log: Callable[[str], None] | None) -> None:
    if bar is not None:
        bar.update(1)
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k.startswith(("train", "val"))})
    if log is not None:
        log(
            " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        )


@torch.no_grad()
def validation_logits(
    model: nn.Module, data: Tensors, batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets of every window of ``data`` (eval mode)."""
    model.eval()
    logits, targets = [], []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)), device=data.present.device)
        feats, present, target = data.batch(idx)
        logits.append(model(feats, present))
        targets.append(target)
    return torch.cat(logits), torch.cat(targets)


def validation_kl(model: nn.Module, data: Tensors, batch_size: int = 1024) -> float:
    logits, targets = validation_logits(model, data, batch_size)
    return float(kl_divergence(logits, targets))
