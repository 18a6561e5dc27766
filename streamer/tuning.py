"""A small grid of settings compared by participant-independent cross-validation, on
Ray Tune.

Each grid point is a Tune trial of one CPU (one GPU where the cluster has them) that
cross-validates the training settings with that point applied (the same folds and
seeds for every point, so the points differ by their settings only) and reports
the pooled metrics. The data set is put into Ray's object store once. Out come a
table of every point (``tune.csv``, ``tune.md``) and the best point's training
settings as a config ``streamer train --config`` reads (``best.toml``).
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from helo.models.datasets.windows import WindowDataset
from helo.models.errors import HeloError
from helo.models.metrics import LOWER_IS_BETTER, METRICS
from helo.models.training import TrainConfig

_TRAIN_KEYS = {f.name for f in fields(TrainConfig)} - {"model_options"}


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["d_model=32,64", "lr=1e-3,3e-4"]`` -> ``{"d_model": [32, 64], "lr": [...]}``;
    values as TOML reads them (numbers, true/false), else strings."""
    import tomllib

    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not parts:
            raise HeloError(f"--grid {item!r}: expected KEY=VALUE,VALUE,...")
        parsed = []
        for text in parts:
            try:
                parsed.append(tomllib.loads(f"v = {text}")["v"])
            except tomllib.TOMLDecodeError:
                parsed.append(text)
        grid[key.strip()] = parsed
    if not grid:
        raise HeloError("give at least one --grid KEY=VALUE,VALUE")
    return grid


def apply_point(base: TrainConfig, point: Mapping[str, Any]) -> TrainConfig:
    """``base`` with a grid point: training settings by name, the rest model options."""
    train = {k: v for k, v in point.items() if k in _TRAIN_KEYS}
    options = {k: v for k, v in point.items() if k not in _TRAIN_KEYS}
    try:
        return replace(base, **train, model_options={**base.model_options, **options})
    except (TypeError, ValueError) as exc:
        raise HeloError(f"grid point {dict(point)}: {exc}") from None


@dataclass
class TuneRow:
    point: dict[str, Any]
    metrics: dict[str, float]
    error: str = ""


def tune_grid(
    data: WindowDataset,
    base: TrainConfig,
    grid: Mapping[str, Sequence[Any]],
    protocol: str = "subject",
    n_folds: int = 4,
    *,
    out: Path,
    metric: str = "kl",
    address: str | None = None,
    workers: int | None = None,
) -> tuple[list[TuneRow], TuneRow]:
    """Every grid point cross-validated as a Ray Tune trial; the rows in grid order and
    the best row by ``metric``."""
    from ray import tune

    from helo.streamer.distributed import start_ray

    if metric not in METRICS:
        raise HeloError(f"--metric {metric!r}: one of {', '.join(METRICS)}")
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    for point in points:
        apply_point(base, point)  # a bad key or value: said now, not in a trial
    started = start_ray(address, workers)
    try:
        import ray

        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        trainable = tune.with_resources(
            tune.with_parameters(_trial, data=data, base=base, protocol=protocol, folds=n_folds),
            {"cpu": 1, "gpu": gpus},
        )
        tuner = tune.Tuner(
            trainable,
            param_space={k: tune.grid_search(list(v)) for k, v in grid.items()},
            tune_config=tune.TuneConfig(
                metric=metric, mode="min" if metric in LOWER_IS_BETTER else "max"
            ),
            run_config=tune.RunConfig(storage_path=str(out.resolve()), name="trials", verbose=0),
        )
        results = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    found: dict[tuple, TuneRow] = {}
    for i in range(len(results)):
        result = results[i]
        config, reported = result.config or {}, result.metrics or {}
        point = {k: config.get(k) for k in grid}
        error = _one_line(result.error) if result.error else ""
        metrics = {m: float(reported[m]) for m in METRICS if m in reported}
        found[_key(point)] = TuneRow(point, metrics, error)
    rows = [found.get(_key(p), TuneRow(p, {}, "no result")) for p in points]
    scored = [r for r in rows if metric in r.metrics and math.isfinite(r.metrics[metric])]
    if not scored:
        raise HeloError(f"no grid point finished: {rows[0].error or 'no result'}")
    sign = 1 if metric in LOWER_IS_BETTER else -1
    best = min(scored, key=lambda r: sign * r.metrics[metric])
    write_outputs(out, rows, best, base, metric)
    return rows, best


def _trial(
    point: dict[str, Any],
    data: WindowDataset,
    base: TrainConfig,
    protocol: str,
    folds: int,
) -> None:
    import torch
    from ray import tune

    from helo.models.evaluation import cross_validate

    torch.set_num_threads(1)  # one CPU per trial (Ray's accounting)
    cv = cross_validate(data, apply_point(base, point), protocol, folds, progress=False)
    tune.report(dict(cv.metrics))


def _key(point: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in point.items()))


def _one_line(error: BaseException | str) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


def write_outputs(
    out: Path, rows: Sequence[TuneRow], best: TuneRow, base: TrainConfig, metric: str
) -> None:
    """``tune.csv`` and ``tune.md`` (every point), ``best.toml`` (the best's settings)."""
    out.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0].point)
    with (out / "tune.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*keys, *METRICS, "error"])
        for r in rows:
            writer.writerow(
                [*(r.point[k] for k in keys), *(r.metrics.get(m, "") for m in METRICS), r.error]
            )
    lines = [
        f"| {' | '.join(keys)} | {' | '.join(METRICS)} |",
        "|" + "---|" * (len(keys) + len(METRICS)),
    ]
    for r in rows:
        mark = " **(best)**" if r is best else ""
        cells = [f"{r.metrics[m]:.4f}" if m in r.metrics else "failed" for m in METRICS]
        lines.append(f"| {' | '.join(str(r.point[k]) for k in keys)} | {' | '.join(cells)} |{mark}")
    text = f"Grid by cross-validation, best by {metric}:\n\n" + "\n".join(lines) + "\n"
    (out / "tune.md").write_text(text, encoding="utf-8")
    (out / "best.toml").write_text(best_config_toml(apply_point(base, best.point)), "utf-8")


def best_config_toml(config: TrainConfig) -> str:
    """A training config file (``[train]`` and ``[model]``) for ``streamer train``."""
    values = asdict(config)
    options = values.pop("model_options")
    lines = ["# the best grid point (streamer tune)", "[train]"]
    lines += [f"{k} = {_toml(v)}" for k, v in values.items() if v is not None]
    lines += ["", "[model]"] + [f"{k} = {_toml(v)}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
