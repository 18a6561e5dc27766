"""A personal model: a trained checkpoint fine-tuned on a few labelled trials of one person.

People differ more than emotions do; a handful of labelled trials of the person the
monitor watches (calibration clips at the start of a session) carry what a model
trained on other people cannot know. :func:`adapt_model` fits a copy of the model
to them. By default (``inputs``) a scale and a shift per input feature, folded into
the encoders (:mod:`models.input_calibration`): with 4 trials it cut KL more than
three times as much as fine-tuning layers did (docs/model.md). Otherwise layers are fine-tuned
(``head``: the label attention and output layers; ``encoders``: the per-modality
input encoders; ``all``): with two or more trials, a quarter of them (at least one)
is held out for early stopping, and the base model's own weights are the first
candidate, so the personal model is never worse than its base on those trials; with
one, a fixed, short schedule runs. The result
is a checkpoint like any other, whose metadata says where it came from (base model
and its weights' digest, participant, trials used), so a lab can always tell a
personal model from the one it came from.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helo.models.checkpoint import Checkpoint, EmotionModel, save_checkpoint, weights_digest
from helo.models.datasets.windows import WindowDataset
from helo.models.errors import HeloError
from helo.models.evaluation import FoldMap, folds_for, sequential_folds
from helo.models.features.spec import spec_difference
from helo.models.helo import HeLo
from helo.models.input_calibration import (
    CalibrationConfig,
    fit_calibration,
    fold_into_encoders,
)
from helo.models.splits import holdout
from helo.models.training import (
    Tensors,
    TrainConfig,
    fit_epochs,
    set_seeds,
    to_tensors,
    train_model,
    validation_kl,
)

MOVING = ("inputs", "head", "encoders", "all")
# Parameters of HeLo each choice fine-tunes (top-level module names).
_HEAD = ("head", "label_attention", "token_projection", "label_embedding")
_ENCODERS = ("encoders", "absent", "phys_projection")


@dataclass(frozen=True)
class AdaptConfig:
    """How a personal model is made (saved in its metadata)."""

    moving: str = "inputs"  # inputs | head | encoders | all (measured: docs/model.md)
    lr: float = 3e-4
    epochs: int = 30
    fixed_epochs: int = 8  # with one trial: no validation, this many epochs
    patience: int = 5
    batch_size: int = 64
    weight_decay: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.moving not in MOVING:
            raise HeloError(f"adapt: --train must be one of {MOVING}, got {self.moving!r}")
        if not self.lr > 0 or self.epochs < 1 or self.fixed_epochs < 1:
            raise HeloError("adapt: lr must be > 0 and epochs >= 1")


@dataclass
class AdaptResult:
    model: EmotionModel
    participant: str
    trials: list[str]  # trials fine-tuned on
    validation_trials: list[str]  # held out for early stopping (none: an input calibration)
    kl_before: float | None  # on the validation trials
    kl_after: float | None
    best_epoch: int  # epochs (an input calibration: steps); 0: the base's weights were kept
    seconds: float
    config: AdaptConfig
    # an input calibration's numbers (modality -> log_scale, shift, shape), so that a
    # group session can apply it beside other people's in one batch of the base model
    calibration: dict[str, dict[str, list]] | None = None

    @property
    def in_sample(self) -> bool:
        """KL before/after on the trials fitted: an input calibration holds none out."""
        return self.config.moving == "inputs"

    def checked_on(self) -> str:
        """Where ``kl_before -> kl_after`` was measured, for a person to read."""
        if self.in_sample:
            return f"on the {len(self.trials)} trial(s) fitted"
        return f"on {len(self.validation_trials)} held-out trial(s)"

    def provenance(self, base: Checkpoint) -> dict[str, Any]:
        """What the personal checkpoint's metadata says about where it came from."""
        return {
            "base_model": str(base.path or ""),
            "base_weights_sha256": weights_digest(base.model.state_dict()),
            "participant": self.participant,
            "trials": self.trials,
            "validation_trials": self.validation_trials,
            "kl_before": self.kl_before,
            "kl_after": self.kl_after,
            "best_epoch": self.best_epoch,
            "kl_measured": self.checked_on(),
            "seconds": round(self.seconds, 1),
            "adapt_config": asdict(self.config),
            **({"input_calibration": self.calibration} if self.calibration else {}),
        }


def save_personal(path: str | Path, base: Checkpoint, result: AdaptResult, source: str) -> Path:
    """Write the personal checkpoint: the base model's spec and training metadata, plus
    where it came from (``source``: a recording, the live session)."""
    training = {
        **base.training,
        "personal": {**result.provenance(base), "source": source},
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return save_checkpoint(path, result.model, base.spec, training)


def check_compatible(base: Checkpoint, data: WindowDataset, where: str) -> None:
    """Refuse, in one line, data a checkpoint was not trained for."""
    why = spec_difference(data.spec, base.spec, normalisation=False)
    if why:
        raise HeloError(f"{where}: the model takes other inputs: {why}")


def adapt_model(
    base: Checkpoint,
    data: WindowDataset,
    config: AdaptConfig | None = None,
    participant: str | None = None,
    log: Callable[[str], None] | None = None,
    rows: np.ndarray | None = None,
) -> AdaptResult:
    """Fine-tune a copy of ``base`` on one participant's labelled windows in ``data``
    (only ``rows`` of them when given: the others still count for the participant's
    normalisation statistics, as they would in the session)."""
    started = time.perf_counter()
    config = config or AdaptConfig()
    check_compatible(base, data, data.name or "data")
    data = _one_participant(data, participant)
    who = str(data.subjects[0])
    inputs = to_tensors(data, base.spec, torch.device("cpu"))  # the whole sequence, in order
    if rows is not None:
        inputs = _rows(inputs, np.asarray(rows))
        data = data.subset(np.asarray(rows))
    trials = list(dict.fromkeys(data.trials.tolist()))
    if len(trials) < 1:
        raise HeloError(f"adapt: participant {who!r} has no labelled trial")
    device = torch.device("cpu")
    generator = set_seeds(config.seed)
    model = copy.deepcopy(base.model).to(device)
    if not isinstance(model, HeLo) and config.moving != "all":
        raise HeloError(f"adapt: --train {config.moving} needs a HeLo model; use --train all")
    if config.moving == "inputs" and isinstance(model, HeLo):
        return _adapt_inputs(model, inputs, data, trials, config, generator, started)
    _choose_moving(model, config.moving)
    val_trials: list[str] = []
    fit_rows = np.arange(len(data))
    if len(trials) >= 2:
        fit_rows, val_rows = holdout(data.trials, 0.25, seed=config.seed)
        val_trials = list(dict.fromkeys(data.trials[val_rows].tolist()))
    fit_t = _rows(inputs, fit_rows)
    val_t = _rows(inputs, np.setdiff1d(np.arange(len(data)), fit_rows)) if val_trials else None
    kl_before = validation_kl(model, val_t) if val_t is not None else None
    train_config = TrainConfig(
        model=base.kind,
        epochs=config.epochs if val_t is not None else config.fixed_epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        patience=config.patience,
        modality_dropout=0.5,
        seed=config.seed,
        calibrate=False,
    )
    # Never worse than the base on the held-out trials: its weights are the first
    # candidate early stopping keeps.
    initial = kl_before if kl_before is not None else math.inf
    _, best_epoch = fit_epochs(model, fit_t, val_t, train_config, generator, False, log, initial)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    kl_after = validation_kl(model, val_t) if val_t is not None else None
    return AdaptResult(
        model=model,
        participant=who,
        trials=[t for t in trials if t not in val_trials],
        validation_trials=val_trials,
        kl_before=kl_before,
        kl_after=kl_after,
        best_epoch=best_epoch,
        seconds=time.perf_counter() - started,
        config=config,
    )


def _adapt_inputs(
    model: HeLo,
    inputs: Tensors,
    data: WindowDataset,
    trials: list[str],
    config: AdaptConfig,
    generator: torch.Generator,
    started: float,
) -> AdaptResult:
    """A personal input calibration (:mod:`models.input_calibration`) fitted on every
    trial, on a fixed schedule: no trial is held out, because 4 trials need all they
    have (holding one out for early stopping, or keeping the calibration only where
    folds of trials vouched for it, both lost a third of the gain on unseen simulated
    participants; docs/model.md). Its KL before and after is on the trials fitted."""
    calibration = fit_calibration(model, inputs, len(trials), CalibrationConfig(), generator)
    kl_before = validation_kl(model, inputs)
    numbers = {
        name: {
            "log_scale": log_scale.detach().flatten().tolist(),
            "shift": shift.detach().flatten().tolist(),
            "shape": list(log_scale.shape),
        }
        for name, (log_scale, shift) in calibration.items()
    }
    fold_into_encoders(model, calibration)
    kl_after = validation_kl(model, inputs)  # the personal model itself, as saved
    return AdaptResult(
        model=model,
        participant=str(data.subjects[0]),
        trials=trials,
        validation_trials=[],
        kl_before=kl_before,
        kl_after=kl_after,
        best_epoch=CalibrationConfig.steps,
        seconds=time.perf_counter() - started,
        config=config,
        calibration=numbers,
    )


def _one_participant(data: WindowDataset, participant: str | None) -> WindowDataset:
    subjects = list(dict.fromkeys(data.subjects.tolist()))
    if participant is not None:
        if participant not in subjects:
            raise HeloError(
                f"adapt: participant {participant!r} is not in the data; it has {subjects[:8]}"
            )
        return data.subset(np.flatnonzero(data.subjects == participant))
    if len(subjects) != 1:
        raise HeloError(
            f"adapt: the data hold {len(subjects)} participants ({', '.join(subjects[:5])}"
            f"{', ...' if len(subjects) > 5 else ''}); choose one with --participant"
        )
    return data


def _choose_moving(model: torch.nn.Module, moving: str) -> None:
    """Freeze every parameter but those the choice moves."""
    if moving == "all":
        return
    keep = _HEAD if moving == "head" else _ENCODERS
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.split(".")[0] in keep)


def _rows(tensors: Tensors, rows: np.ndarray) -> Tensors:
    idx = torch.as_tensor(rows, dtype=torch.long)
    feats, present, targets = tensors.batch(idx)
    return replace(tensors, features=feats, present=present, targets=targets)


@dataclass
class PersonalRow:
    """Personal adaptation with ``k`` labelled trials per test participant, pooled over
    every participant: the subject-independent model and the personal one, scored on
    the same remaining trials of each."""

    k: int
    moving: str
    n_windows: int
    n_participants: int
    base: dict[str, float]
    personal: dict[str, float]
    seconds_per_participant: float
    # Each participant's KL change on their own remaining trials, in percent.
    per_participant: list[float] = field(default_factory=list)
    # Where the pooled KL change lies for other participants like these: a 95 %
    # bootstrap interval over participants (percent); NaN with fewer than two.
    kl_change_interval: tuple[float, float] = (math.nan, math.nan)

    @property
    def kl_change(self) -> float:
        """Relative change of KL from the subject-independent model, in percent
        (negative: the personal model is closer to the labels)."""
        before = self.base["kl"]
        return 100.0 * (self.personal["kl"] / before - 1) if before else 0.0

    def spread(self) -> str:
        """The interval and the range over participants, for a line of a report."""
        low, high = self.kl_change_interval
        if not self.per_participant or math.isnan(low):
            return "one participant"
        return (
            f"95 % interval {low:+.1f} to {high:+.1f} %, participants "
            f"{min(self.per_participant):+.1f} to {max(self.per_participant):+.1f} %"
        )


def personal_plans(ks: tuple[int, ...], compare_at: int = 4) -> list[tuple[int, AdaptConfig]]:
    """Every ``k`` with the default adaptation, and at ``compare_at`` each choice of
    which parameters move (the measurement behind the default)."""
    plans = [(k, AdaptConfig()) for k in ks]
    if compare_at in ks:
        plans += [(compare_at, AdaptConfig(moving=m)) for m in MOVING if m != AdaptConfig.moving]
    return plans


@dataclass(frozen=True)
class PersonalFold:
    """One fold of the personal rows: train on its other subjects, adapt to each of
    its test subjects (a job for :data:`models.evaluation.FoldMap`: here or on Ray)."""

    fold: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    config: TrainConfig
    ks: tuple[int, ...]


Pooled = dict[tuple[int, str], dict[str, list]]  # (k, what moves) -> predictions, targets


def personal_rows(
    data: WindowDataset,
    base_config: TrainConfig,
    ks: tuple[int, ...] = (2, 4, 8),
    n_folds: int = 4,
    log: Callable[[str], None] | None = None,
    fold_map: FoldMap | None = None,
) -> list[PersonalRow]:
    """For each subject fold: train on the other subjects, then for every test subject
    and every plan (k, what moves): fine-tune on ``k`` of its trials (drawn with the
    seed) and score both models on its trials not drawn. No trial is on both sides; a
    subject with fewer than ``k + 1`` trials is left out of that ``k``. The folds run
    by ``fold_map`` (default: one after the other); pooled in fold order, the rows are
    the same either way (for the same torch threads per fold)."""
    folds = folds_for(data, "subject", n_folds, base_config.seed)
    jobs = [PersonalFold(f, tr, te, base_config, ks) for f, (tr, te) in enumerate(folds)]
    mapped = (fold_map or sequential_folds)(personal_fold, {"": data}, jobs)
    pooled: Pooled = {}
    for f, part in enumerate(mapped):
        for key, bucket in part.items():
            into = pooled.setdefault(key, {name: [] for name in bucket})
            for name, values in bucket.items():
                into[name].extend(values)
        if log is not None:
            log(f"personal adaptation: fold {f + 1}/{n_folds} done")
    return [pooled_row(k, moving, bucket) for (k, moving), bucket in pooled.items()]


def personal_fold(datasets: Mapping[str, WindowDataset], job: PersonalFold) -> Pooled:
    """One fold's subject-independent model, then every plan on each test subject."""
    data, config = datasets[""], job.config
    train_all = data.subset(job.train_idx)
    fit_idx, val_idx = holdout(train_all.subjects, config.val_fraction, config.seed + job.fold)
    fit, val = train_all.subset(fit_idx), train_all.subset(val_idx)
    result = train_model(fit, val, config, progress=False)
    base = Checkpoint(result.model, result.spec, config.model)
    test = data.subset(job.test_idx)
    plans, pooled = personal_plans(job.ks), Pooled()
    for subject in np.unique(test.subjects):
        own = test.subset(np.flatnonzero(test.subjects == subject))
        adapt_subject(base, own, plans, [config.seed, job.fold], pooled)
    return pooled


def adapt_subject(
    base: Checkpoint,
    own: WindowDataset,
    plans: list[tuple[int, AdaptConfig]],
    seed: list[int],
    pooled: Pooled,
) -> None:
    """Every plan on one test subject; predictions of both models on its other trials."""
    from helo.models.evaluation import predict

    base_pred = predict(base.model, base.spec, own)
    trials = np.unique(own.trials)
    order = np.random.default_rng([*seed, len(trials)]).permutation(trials)
    for k, config in plans:
        if len(trials) <= k:
            continue
        rest = ~np.isin(own.trials, order[:k])
        # Fine-tuned on the chosen trials; the participant's statistics run over the
        # whole session, in order, as live.
        adapted = adapt_model(base, own, config, rows=np.flatnonzero(~rest))
        pred = predict(adapted.model, base.spec, own)
        bucket = pooled.setdefault(
            (k, config.moving),
            {"base": [], "personal": [], "targets": [], "seconds": [], "who": []},
        )
        bucket["base"].append(base_pred[rest])
        bucket["personal"].append(pred[rest])
        bucket["targets"].append(own.targets[rest])
        bucket["seconds"].append(adapted.seconds)
        bucket["who"].append(own.subjects[0])


def pooled_row(k: int, moving: str, bucket: dict[str, list]) -> PersonalRow:
    from helo.models.metrics import evaluate_distributions

    targets = np.concatenate(bucket["targets"])
    base_kl, personal_kl = _kl_sums(bucket)
    return PersonalRow(
        k=k,
        moving=moving,
        n_windows=len(targets),
        n_participants=len(bucket["who"]),
        base=evaluate_distributions(np.concatenate(bucket["base"]), targets),
        personal=evaluate_distributions(np.concatenate(bucket["personal"]), targets),
        seconds_per_participant=float(np.mean(bucket["seconds"])),
        per_participant=(100.0 * (personal_kl / base_kl - 1)).tolist(),
        kl_change_interval=change_interval(base_kl, personal_kl),
    )


def _kl_sums(bucket: dict[str, list]) -> tuple[np.ndarray, np.ndarray]:
    """Each participant's KL summed over their scored windows, base and personal."""
    from helo.models.metrics import per_sample

    def total(name: str) -> np.ndarray:
        return np.array(
            [
                per_sample(p, y)["kl"].sum()
                for p, y in zip(bucket[name], bucket["targets"], strict=True)
            ]
        )

    return total("base"), total("personal")


def change_interval(
    base_kl: np.ndarray, personal_kl: np.ndarray, draws: int = 2000
) -> tuple[float, float]:
    """95 % bootstrap interval (percent) of the pooled KL change, participants drawn
    with replacement. People differ so much that populations of six simulated
    participants gave from -8.8 % to -22.9 % with 4 trials: a pooled figure says little
    without how far it would move with other people. Fixed draws, so that a report
    repeats."""
    n = len(base_kl)
    if n < 2:
        return math.nan, math.nan
    picks = np.random.default_rng(0).integers(0, n, size=(draws, n))
    changes = 100.0 * (personal_kl[picks].sum(1) / base_kl[picks].sum(1) - 1)
    low, high = np.percentile(changes, [2.5, 97.5])
    return float(low), float(high)
