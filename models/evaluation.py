"""Evaluation: the six metrics over all test windows, per modality subset, and by protocol.

Protocols (see :mod:`models.splits`): ``subject`` (subject-independent,
leave-subjects-out folds) and ``trial`` (subject-dependent, trial-level folds).
Predictions of every fold are pooled and the metrics computed over *all* test
windows. Per-subset metrics evaluate the same model with only some modalities
present (the others masked), on the windows that have all of that subset.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from helo.models.datasets.windows import WindowDataset
from helo.models.errors import HeloError
from helo.models.features.spec import FeatureSpec
from helo.models.metrics import evaluate_distributions
from helo.models.splits import holdout, subject_folds, trial_folds
from helo.models.training import TrainConfig, model_device, to_tensors, train_model

PROTOCOLS = ("subject", "trial")


@torch.no_grad()
def predict(
    model: nn.Module,
    spec: FeatureSpec,
    data: WindowDataset,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
    present: np.ndarray | None = None,
) -> np.ndarray:
    """Distributions ``[N, K]`` for every window of ``data`` (``present`` overrides its mask)."""
    if data.spec.names != spec.names:
        raise HeloError(
            f"data set modalities {list(data.spec.names)} differ from the model's "
            f"{list(spec.names)}"
        )
    if data.spec.labels != spec.labels:
        raise HeloError(
            f"data set labels {list(data.spec.labels)} differ from the model's {list(spec.labels)}"
        )
    device = torch.device(device)
    if present is not None:
        data = replace(data, present=present)
    tensors = to_tensors(data, spec, device)
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)), device=device)
        feats, mask, _ = tensors.batch(idx)
        out.append(torch.softmax(model(feats, mask), dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, spec.n_labels))


def subset_name(names: tuple[str, ...]) -> str:
    return "+".join(names)


def evaluate_subsets(
    model: nn.Module, spec: FeatureSpec, data: WindowDataset, device: torch.device | str = "cpu"
) -> dict[str, dict[str, float]]:
    """Metrics with each non-empty subset of modalities (others masked)."""
    results = {}
    names = spec.names
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(range(len(names)), size):
            keep = np.zeros(len(names), dtype=bool)
            keep[list(subset)] = True
            rows = np.flatnonzero(data.present[:, keep].all(axis=1))
            if not len(rows):
                continue
            part = data.subset(rows)
            pred = predict(model, spec, part, device, present=part.present & keep[None, :])
            metrics = evaluate_distributions(pred, part.targets)
            results[subset_name(tuple(names[i] for i in subset))] = {**metrics, "n": len(rows)}
    return results


@dataclass
class CrossValidation:
    """Pooled predictions of all folds and their metrics."""

    protocol: str
    n_folds: int
    metrics: dict[str, float]
    per_fold: list[dict[str, float]]
    per_subset: dict[str, dict[str, float]] = field(default_factory=dict)
    predictions: np.ndarray | None = None
    targets: np.ndarray | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "n_folds": self.n_folds,
            "metrics": self.metrics,
            "per_fold": self.per_fold,
            "per_subset": self.per_subset,
            "seconds": round(self.seconds, 1),
        }


def folds_for(data: WindowDataset, protocol: str, n_folds: int, seed: int):
    if protocol == "subject":
        return subject_folds(data.subjects, n_folds, seed)
    if protocol == "trial":
        return trial_folds(data.subjects, data.trials, n_folds, seed)
    raise HeloError(f"--protocol must be one of {PROTOCOLS}, got {protocol!r}")


@dataclass(frozen=True)
class FoldJob:
    """One fold to train and test: which of the shared data sets (a report row's), the
    training settings, the fold's windows. Small: the data sets travel once (a Ray
    object), the jobs many times."""

    key: str
    config: TrainConfig
    fold: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    subsets: bool = False


@dataclass
class FoldResult:
    """What a fold gave: its test predictions and metrics (the model stays where it was
    trained: folds may run in other processes)."""

    key: str
    fold: int
    test_idx: np.ndarray
    predictions: np.ndarray
    metrics: dict[str, float]
    best_epoch: int
    seconds: float
    subset_metrics: dict[str, dict[str, float]] | None = None


Job = TypeVar("Job")
Result = TypeVar("Result")
FoldRunner = Callable[[Mapping[str, WindowDataset], FoldJob], FoldResult]


class FoldMap(Protocol):
    """How folds run: sequentially here (the default, :func:`sequential_folds`), or as
    Ray tasks (:func:`helo.streamer.distributed.ray_fold_map`); results come in job
    order. Any job and result: a report row's folds, or the personal rows' (train on
    the others, adapt to each test participant)."""

    def __call__(
        self,
        run: Callable[[Mapping[str, WindowDataset], Job], Result],
        datasets: Mapping[str, WindowDataset],
        jobs: list[Job],
    ) -> Iterable[Result]: ...


def sequential_folds(
    run: Callable[[Mapping[str, WindowDataset], Job], Result],
    datasets: Mapping[str, WindowDataset],
    jobs: list[Job],
) -> Iterator[Result]:
    for job in jobs:
        yield run(datasets, job)


def fold_jobs(
    data: WindowDataset,
    config: TrainConfig,
    protocol: str,
    n_folds: int,
    subsets: bool = False,
    key: str = "",
) -> list[FoldJob]:
    """The folds of ``protocol`` (the same for every row of a report: same seed)."""
    return [
        FoldJob(key, config, f, train_idx, test_idx, subsets)
        for f, (train_idx, test_idx) in enumerate(folds_for(data, protocol, n_folds, config.seed))
    ]


def run_fold(
    datasets: Mapping[str, WindowDataset], job: FoldJob, progress: bool = False
) -> FoldResult:
    """Train on the fold's training part (early-stopping on a validation part split the
    same way) and predict its test part; the same here or in a Ray worker."""
    data = datasets[job.key]
    config = job.config
    train_all, test = data.subset(job.train_idx), data.subset(job.test_idx)
    groups = train_all.subjects if config.val_by == "subject" else train_all.trials
    fit_idx, val_idx = holdout(groups, config.val_fraction, seed=config.seed + job.fold)
    result = train_model(
        train_all.subset(fit_idx), train_all.subset(val_idx), config, progress=progress
    )
    device = model_device(result.model)
    pred = predict(result.model, result.spec, test, device)
    return FoldResult(
        job.key,
        job.fold,
        job.test_idx,
        pred,
        evaluate_distributions(pred, test.targets),
        result.best_epoch,
        result.seconds,
        evaluate_subsets(result.model, result.spec, test, device) if job.subsets else None,
    )


def pool_folds(
    data: WindowDataset, protocol: str, n_folds: int, results: Iterable[FoldResult]
) -> CrossValidation:
    """The folds' test predictions pooled, and their metrics."""
    pred = np.full(data.targets.shape, np.nan)
    per_fold, subset_parts = [], []
    seconds = 0.0
    for r in sorted(results, key=lambda r: r.fold):
        pred[r.test_idx] = r.predictions
        per_fold.append({**r.metrics, "n": len(r.test_idx), "best_epoch": r.best_epoch})
        seconds += r.seconds
        if r.subset_metrics is not None:
            subset_parts.append(r.subset_metrics)
    return CrossValidation(
        protocol=protocol,
        n_folds=n_folds,
        metrics=evaluate_distributions(pred, data.targets),
        per_fold=per_fold,
        per_subset=_pool_subsets(subset_parts),
        predictions=pred,
        targets=data.targets,
        seconds=seconds,
    )


def cross_validate(
    data: WindowDataset,
    config: TrainConfig,
    protocol: str = "subject",
    n_folds: int = 5,
    subsets: bool = False,
    progress: bool = True,
    on_fold: Callable[[FoldResult], None] | None = None,
    fold_map: FoldMap | None = None,
) -> CrossValidation:
    """Every fold trained and tested (:func:`run_fold`), by ``fold_map`` (default: one
    after the other, here), and the test predictions pooled. The folds and seeds are
    the same whichever way they run, so the results are too (for the same number of
    torch threads per fold)."""
    jobs = fold_jobs(data, config, protocol, n_folds, subsets)
    results = []
    if fold_map is None:
        runner: FoldRunner = lambda datasets, job: run_fold(datasets, job, progress)  # noqa: E731
        mapped: Iterable[FoldResult] = sequential_folds(runner, {"": data}, jobs)
    else:
        mapped = fold_map(run_fold, {"": data}, jobs)
    for result in mapped:
        results.append(result)
        if on_fold is not None:
            on_fold(result)
    return pool_folds(data, protocol, n_folds, results)


def _pool_subsets(parts: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Window-weighted mean of per-fold subset metrics (equal to pooling, metrics being means)."""
    pooled: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(k for part in parts for k in part):
        rows = [part[name] for part in parts if name in part]
        total = sum(r["n"] for r in rows)
        pooled[name] = {k: sum(r[k] * r["n"] for r in rows) / total for k in rows[0] if k != "n"}
        pooled[name]["n"] = total
    return pooled
