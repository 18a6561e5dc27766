"""The comparison report: HeLo against baselines and ablations under one protocol.

Rows: the training-mean distribution, a concatenation MLP, HeLo, HeLo with the
paper's encoder and OT step (our two changes undone), HeLo without OT, HeLo
without label correlation, and HeLo on each single modality. Every row
is trained and tested with the same folds (subject-independent by default) and
the same training settings, and its metrics are computed over all test windows.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from helo.models.datasets.windows import WindowDataset
from helo.models.evaluation import (
    FoldJob,
    FoldMap,
    FoldResult,
    FoldRunner,
    fold_jobs,
    pool_folds,
    run_fold,
    sequential_folds,
)
from helo.models.metrics import LOWER_IS_BETTER, METRICS, metrics_table
from helo.models.personal import PersonalRow, personal_rows
from helo.models.training import TrainConfig

MEAN_ROW = "Training-mean distribution"
MLP_ROW = "Concatenation MLP"  # the baselines the verdict line speaks of


@dataclass(frozen=True)
class Variant:
    name: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    modalities: tuple[str, ...] | None = None  # None: all
    correlation_weight: float | None = None
    normalisation: str | None = None  # None: the base config's


def other_normalisation(kind: str) -> str:
    return "global" if kind == "participant" else "participant"


ROW_SETS = ("all", "normalisation", "personal")


def variants_of(row_set: str, modalities: tuple[str, ...], normalisation: str) -> list[Variant]:
    """The rows ``streamer report --rows`` names: all, the normalisation comparison, or
    none (``personal``: only the personal-adaptation table, whose folds train their own
    models)."""
    if row_set == "all":
        return default_variants(modalities, normalisation)
    if row_set == "normalisation":
        return normalisation_variants(normalisation)
    return []


def normalisation_variants(normalisation: str = "global") -> list[Variant]:
    """HeLo and the MLP, each normalised both ways (``streamer report --rows
    normalisation``: the participant-adaptation evidence without the ablations)."""
    other = other_normalisation(normalisation)
    return [
        Variant(MEAN_ROW, "mean"),
        Variant(MLP_ROW, "concat_mlp"),
        Variant("HeLo", "helo"),
        Variant(f"HeLo, {other} normalisation", "helo", normalisation=other),
        Variant(f"{MLP_ROW}, {other} normalisation", "concat_mlp", normalisation=other),
    ]


def default_variants(modalities: tuple[str, ...], normalisation: str = "global") -> list[Variant]:
    other = other_normalisation(normalisation)
    rows = [
        Variant(MEAN_ROW, "mean"),
        Variant(MLP_ROW, "concat_mlp"),
        Variant("HeLo", "helo"),
        Variant(
            "HeLo as published (shared EEG encoder, T @ Phys)",
            "helo",
            {"channel_weights": False, "ot_residual": False},
        ),
        Variant("HeLo without OT", "helo", {"use_ot": False}),
        Variant(
            "HeLo without label correlation",
            "helo",
            {"use_label_correlation": False},
            correlation_weight=0.0,
        ),
        Variant(f"HeLo, {other} normalisation", "helo", normalisation=other),
        Variant(f"{MLP_ROW}, {other} normalisation", "concat_mlp", normalisation=other),
    ]
    if len(modalities) > 1:
        rows += [Variant(f"HeLo, {m} only", "helo", modalities=(m,)) for m in modalities]
    return rows


@dataclass
class ReportResult:
    protocol: str
    n_folds: int
    rows: dict[str, dict[str, float]]
    seconds: dict[str, float]
    helo_subsets: dict[str, dict[str, float]]
    data_summary: str
    base_config: TrainConfig
    personal: list[PersonalRow] = field(default_factory=list)


def run_report(
    data: WindowDataset,
    base: TrainConfig,
    protocol: str = "subject",
    n_folds: int = 4,
    variants: list[Variant] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    personal_ks: tuple[int, ...] = (2, 4, 8),
    fold_map: FoldMap | None = None,
) -> ReportResult:
    """Every row by the same folds, all rows' folds one set of jobs for ``fold_map``
    (default: one after the other here; Ray tasks run them side by side); then, with
    ``personal_ks``, HeLo personalised with k labelled trials per test participant
    (:func:`models.personal.personal_rows`, its folds by ``fold_map`` too). A row's
    time is its folds' training time."""
    if variants is None:
        variants = default_variants(data.spec.names, base.normalisation)
    rows, seconds, subsets = {}, {}, {}
    datasets: dict[str, WindowDataset] = {}
    jobs: list[FoldJob] = []
    for variant in variants:
        options = (
            {**base.model_options, **variant.options}
            if variant.model == base.model
            else dict(variant.options)
        )
        config = replace(base, model=variant.model, model_options=options)
        if variant.correlation_weight is not None:
            config = replace(config, correlation_weight=variant.correlation_weight)
        if variant.normalisation is not None:
            config = replace(config, normalisation=variant.normalisation)
        part = data.select_modalities(variant.modalities) if variant.modalities else data
        datasets[variant.name] = part
        jobs += fold_jobs(part, config, protocol, n_folds, variant.name == "HeLo", variant.name)
    done: dict[str, list[FoldResult]] = {}
    expected = {key: sum(job.key == key for job in jobs) for key in datasets}
    mapped: Iterable[FoldResult]
    if fold_map is None:
        runner: FoldRunner = lambda shared, job: run_fold(shared, job, progress)  # noqa: E731
        mapped = sequential_folds(runner, datasets, jobs)
    else:
        mapped = fold_map(run_fold, datasets, jobs)
    for result in mapped:
        done.setdefault(result.key, []).append(result)
        if len(done[result.key]) < expected[result.key]:
            continue
        name, part = result.key, datasets[result.key]
        cv = pool_folds(part, protocol, n_folds, done[name])
        seconds[name] = cv.seconds
        rows[name] = {**cv.metrics, "n": len(part)}
        if name == "HeLo":
            subsets = cv.per_subset
        log(
            f"{name}: "
            + ", ".join(f"{m} {cv.metrics[m]:.4f}" for m in METRICS)
            + f" ({seconds[name]:.0f} s)"
        )
    rows = {v.name: rows[v.name] for v in variants if v.name in rows}
    personal = []
    if personal_ks and base.model == "helo":
        started = time.perf_counter()
        personal = personal_rows(data, base, personal_ks, n_folds, log, fold_map)
        seconds["HeLo personalised (all k)"] = time.perf_counter() - started
        for row in personal:
            log(
                f"HeLo personalised with {row.k} trials ({row.moving}): KL "
                f"{row.base['kl']:.4f} -> "
                f"{row.personal['kl']:.4f} on {row.n_windows} windows"
            )
    return ReportResult(protocol, n_folds, rows, seconds, subsets, data.summary(), base, personal)


def improvement(metric: str, ours: float, theirs: float) -> float:
    """Relative improvement of ``ours`` over ``theirs`` in percent (positive = better)."""
    if theirs == 0:
        return 0.0
    change = (
        (theirs - ours) / abs(theirs) if LOWER_IS_BETTER[metric] else (ours - theirs) / abs(theirs)
    )
    return 100.0 * change


def render_markdown(result: ReportResult, title: str = "HeLo on the synthetic benchmark") -> str:
    proto = {
        "subject": "subject-independent (whole subjects per fold)",
        "trial": "subject-dependent (whole trials per fold)",
    }[result.protocol]
    helo = result.rows.get("HeLo")
    lines = [
        f"# {title}",
        "",
        f"Protocol: {proto}, {result.n_folds} folds; metrics over all test windows pooled "
        "(arrows: which direction is better).",
        "",
        f"Data: {result.data_summary}",
        "",
        f"Training: {_config_line(result.base_config)}",
        "",
    ]
    if result.rows:
        lines += [metrics_table(result.rows, extra=("n",)), ""]
    if helo is not None:
        lines += [verdict(helo, result.rows), ""]
        lines += ["## How much HeLo improves on each row (percent, positive = HeLo better)", ""]
        header = ["versus", *METRICS]
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for name, row in result.rows.items():
            if name == "HeLo":
                continue
            cells = [_percent(improvement(m, helo[m], row[m])) for m in METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if result.helo_subsets:
        lines += [
            "## HeLo (one model, trained with modality dropout) with only some modalities",
            "",
            metrics_table(result.helo_subsets, first="modalities present", extra=("n",)),
            "",
        ]
    if result.personal:
        lines += _personal_section(result.personal)
    lines += [
        "## Time",
        "",
        "| row | seconds (all folds) |",
        "|---|---|",
        *[f"| {k} | {v:.0f} |" for k, v in result.seconds.items()],
        "",
        f"Machine: {machine_line()}",
        "",
    ]
    return "\n".join(lines)


def _personal_section(rows: list[PersonalRow]) -> list[str]:
    """HeLo trained on the other subjects, then fine-tuned on k labelled trials of each
    test participant; both scored on that participant's remaining trials."""
    lines = [
        "## Personal adaptation (streamer adapt) with k labelled trials per test participant",
        "",
        "Each test participant's model is the fold's subject-independent HeLo fine-tuned "
        "on k of their trials; both are scored on their remaining trials (no trial on "
        "both sides), pooled over participants.",
        "",
        "| k | parameters moved | windows | participants | KL before | KL after "
        "| KL change (- is better) | 95 % interval (participants resampled) "
        "| participants' own changes "
        "| Chebyshev before | Chebyshev after | intersection before | intersection after "
        "| s per participant |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        low, high = row.kl_change_interval
        own = row.per_participant or [row.kl_change]
        interval = f"{_percent(low)} to {_percent(high)} %"
        if math.isnan(low):
            interval = "one participant"
        lines.append(
            f"| {row.k} | {row.moving} | {row.n_windows} | {row.n_participants} | "
            f"{row.base['kl']:.4f} | {row.personal['kl']:.4f} | {_percent(row.kl_change)} % | "
            f"{interval} | {_percent(min(own))} to {_percent(max(own))} % | "
            f"{row.base['chebyshev']:.4f} | "
            f"{row.personal['chebyshev']:.4f} | {row.base['intersection']:.4f} | "
            f"{row.personal['intersection']:.4f} | {row.seconds_per_participant:.1f} |"
        )
    return [*lines, ""]


def _percent(value: float) -> str:
    """One decimal, two where one would show a real difference as +0.0."""
    return f"{value:+.1f}" if abs(value) >= 0.1 or value == 0 else f"{value:+.2f}"


def verdict(helo: dict[str, float], rows: dict[str, dict[str, float]]) -> str:
    """One sentence per baseline: on how many metrics HeLo is better, and which not."""
    parts = []
    for name in (MEAN_ROW, MLP_ROW):
        if name not in rows:
            continue
        better = [m for m in METRICS if improvement(m, helo[m], rows[name][m]) > 0]
        worse = [m for m in METRICS if m not in better]
        baseline = name[0].lower() + name[1:]
        text = f"HeLo is better than the {baseline} on {len(better)} of {len(METRICS)} metrics"
        parts.append(text + (f" (not on {', '.join(worse)})." if worse else "."))
    return "**" + " ".join(parts) + "**" if parts else ""


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )


def _config_line(config: TrainConfig) -> str:
    return (
        f"epochs <= {config.epochs} (early stopping, patience {config.patience}), batch "
        f"{config.batch_size}, Adam lr {config.lr} decay {config.lr_decay}/epoch, weight "
        f"decay {config.weight_decay}, modality dropout {config.modality_dropout}, "
        f"seed {config.seed}, model options {config.model_options or 'paper defaults'}"
        + (
            ", softmax temperature fitted on the validation subjects (every trained row)"
            if config.calibrate
            else ""
        )
        + (f", weight moving average {config.ema_decay}" if config.ema_decay else "")
        + f", {config.normalisation} normalisation"
    )
