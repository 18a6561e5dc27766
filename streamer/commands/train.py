"""``streamer train``: a model from a data set or labelled recordings.

Settings come from a TOML file (``--config``, sections ``[data]``, ``[train]``,
``[model]``) and flags, flags winning. Writes into ``--out``: the checkpoint
(``model.safetensors``), ``metrics.json`` (config, data summary, history,
validation and test metrics, time) and ``training_curve.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import tomllib
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from helo.models.checkpoint import save_checkpoint
from helo.models.datasets.sources import SOURCE_HELP, load_source
from helo.models.datasets.windows import WindowDataset
from helo.models.errors import HeloError
from helo.models.evaluation import evaluate_subsets, predict
from helo.models.features.adapt import AdaptOptions
from helo.models.features.spec import FeatureSpec
from helo.models.metrics import evaluate_distributions
from helo.models.splits import holdout
from helo.models.training import TrainConfig, TrainResult, model_device, train_model
from helo.streamer.commands.session_args import add_input_arguments, inputs_from
from helo.streamer.process import configure_for_training

log = logging.getLogger("streamer.train")

_FLAG_KEYS = {  # flag attribute -> TrainConfig field
    "model": "model",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "seed": "seed",
    "patience": "patience",
    "modality_dropout": "modality_dropout",
    "accelerator": "accelerator",
    "threads": "threads",
    "val_by": "val_by",
    "normalisation": "normalisation",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a data set or labelled recordings",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="TOML file with [data], [train], [model] sections")
    p.add_argument("--data", help=f"training data: {SOURCE_HELP} (default: synthetic)")
    p.add_argument(
        "--spec",
        type=Path,
        help="feature spec (JSON) or checkpoint whose spec labelled XDF recordings are "
        "cut with (default: the synthetic device's spec)",
    )
    p.add_argument("--model", choices=["helo", "concat_mlp", "mean"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    p.add_argument(
        "--modality-dropout",
        type=float,
        help="share of training windows given a random subset of modalities",
    )
    p.add_argument("--val-by", choices=["subject", "trial"], help="validation split unit")
    p.add_argument(
        "--normalisation",
        choices=["global", "participant"],
        help="features z-scored with the training population's statistics, or with each "
        "participant's own running statistics (docs/model.md)",
    )
    p.add_argument("--accelerator", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, help="CPU threads for training")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model option, e.g. --set d_model=64 --set use_ot=false",
    )
    p.add_argument(
        "--test-subjects",
        type=int,
        default=0,
        help="hold out this many subjects of --data as a test set",
    )
    p.add_argument("--test-data", help="separate test data set (same sources as --data)")
    add_input_arguments(p)
    p.add_argument("--out", type=Path, help="output folder (default runs/<model>-<time>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def read_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            config = tomllib.load(handle)
    except OSError as exc:
        raise HeloError(f"{path}: cannot read config ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise HeloError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(config) - {"data", "train", "model"})
    if unknown:
        raise HeloError(f"{path}: unknown section(s) {unknown}; use [data], [train], [model]")
    return config


def parse_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise HeloError(f"--set {text!r}: expected KEY=VALUE")
    try:
        return key.strip(), tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value.strip()  # a bare word: keep it as a string


def train_config_from(args: argparse.Namespace, config: dict[str, Any]) -> TrainConfig:
    values = dict(config.get("train", {}))
    for attr, key in _FLAG_KEYS.items():
        if getattr(args, attr, None) is not None:
            values[key] = getattr(args, attr)
    options = dict(config.get("model", {}))
    options.update(parse_option(text) for text in args.set)
    values["model_options"] = options
    try:
        return TrainConfig.from_dict(values)
    except TypeError as exc:
        raise HeloError(f"train config: {exc}") from None


def load_spec(path: Path | None) -> FeatureSpec | None:
    if path is None:
        return None
    if path.suffix == ".safetensors":
        from helo.models.checkpoint import load_checkpoint

        return load_checkpoint(path).spec
    return FeatureSpec.load(path)


def load_data(
    source: str,
    data_cfg: dict[str, Any],
    spec: FeatureSpec | None,
    inputs: AdaptOptions | None = None,
) -> WindowDataset:
    synthetic_keys = {"n_subjects", "trials_per_subject", "trial_s", "seed", "window_s", "rest_s"}
    synthetic = {k: v for k, v in data_cfg.items() if k in synthetic_keys}
    started = time.perf_counter()
    data = load_source(
        source,
        spec=spec,
        synthetic=synthetic,
        hop_s=float(data_cfg.get("hop_s", 1.0)),
        subject=data_cfg.get("subject"),
        inputs=inputs,
    )
    log.info("%s (%.1f s)", data.summary(), time.perf_counter() - started)
    return data


def source_and_settings(
    args: argparse.Namespace, config: dict[str, Any]
) -> tuple[str, dict[str, Any], TrainConfig]:
    """The data source (``--data``, else the config's ``[data] source``, else synthetic),
    the rest of the ``[data]`` table, and the training settings: what train, evaluate,
    report and tune read the same way."""
    data_cfg = dict(config.get("data", {}))
    source = args.data or data_cfg.pop("source", "synthetic")
    data_cfg.pop("source", None)
    return source, data_cfg, train_config_from(args, config)


def run(args: argparse.Namespace) -> int:
    source, data_cfg, train_cfg = source_and_settings(args, read_config(args.config))
    configure_for_training(train_cfg.threads)
    spec = load_spec(args.spec)
    inputs = inputs_from(args)
    data = load_data(source, data_cfg, spec, inputs)

    test = None
    if args.test_subjects:
        subjects = np.unique(data.subjects)
        if args.test_subjects >= len(subjects):
            raise HeloError(
                f"--test-subjects {args.test_subjects}: the data has only {len(subjects)} subjects"
            )
        rest, held = holdout(data.subjects, args.test_subjects / len(subjects), seed=train_cfg.seed)
        data, test = data.subset(rest), data.subset(held)
    if args.test_data:
        test = load_data(
            args.test_data,
            {k: v for k, v in data_cfg.items() if k != "seed"} | {"seed": train_cfg.seed + 1},
            spec,
            inputs,
        )

    if train_cfg.normalisation == "participant" and data.baseline is None:
        log.warning(
            "participant normalisation without a baseline in the data: each participant's "
            "first %.0f s become the reference, which measured worse than global "
            "normalisation (docs/model.md); label a rest span as baseline",
            60.0,
        )
    groups = data.subjects if train_cfg.val_by == "subject" else data.trials
    fit_idx, val_idx = holdout(groups, train_cfg.val_fraction, seed=train_cfg.seed)
    train_part, val_part = data.subset(fit_idx), data.subset(val_idx)
    log.info(
        "training %s on %d windows, validating on %d (split by %s)",
        train_cfg.model,
        len(train_part),
        len(val_part),
        train_cfg.val_by,
    )
    result = train_model(
        train_part, val_part, train_cfg, progress=not args.no_progress, log=log.debug
    )

    out = args.out or Path("runs") / f"{train_cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    metrics = summarize(result, data, train_part, val_part, test, source)
    path = save_checkpoint(out / "model.safetensors", result.model, result.spec, metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    plot_curve(result, out / "training_curve.png")
    print(f"checkpoint: {path}")
    print(
        f"trained {len(result.history)} epochs (best {result.best_epoch}) in {result.seconds:.0f} s"
        + (
            f"; softmax temperature {result.temperature:.2f} (fitted on the validation part)"
            if result.config.calibrate and result.temperature != 1.0
            else ""
        )
    )
    for part in ("validation", "test"):
        if part in metrics:
            values = metrics[part]["metrics"]
            print(f"{part}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    return 0


def summarize(
    result: TrainResult,
    data: WindowDataset,
    train_part: WindowDataset,
    val_part: WindowDataset,
    test: WindowDataset | None,
    source: str,
) -> dict[str, Any]:
    device = model_device(result.model)
    out: dict[str, Any] = {
        "data": {
            "source": source,
            "summary": data.summary(),
            "train_subjects": sorted(set(train_part.subjects.tolist())),
            "validation_subjects": sorted(set(val_part.subjects.tolist())),
            "train_target_mean": train_part.targets.mean(axis=0).tolist(),
        },
        **result.metadata(),
    }
    for name, part in (("validation", val_part), ("test", test)):
        if part is None or not len(part):
            continue
        pred = predict(result.model, result.spec, part, device)
        out[name] = {
            "n": len(part),
            "subjects": sorted(set(part.subjects.tolist())),
            "metrics": evaluate_distributions(pred, part.targets),
        }
        if name == "test":
            out[name]["per_subset"] = evaluate_subsets(result.model, result.spec, part, device)
    out["train_config"] = {f.name: getattr(result.config, f.name) for f in fields(result.config)}
    assert asdict(result.config) == out["train_config"]
    return out


def plot_curve(result: TrainResult, path: Path) -> None:
    """Training and validation KL per epoch (and the learning rate)."""
    if not result.history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in result.history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(epochs, [row.get("train_kl", np.nan) for row in result.history], label="train KL")
    if "val_kl" in result.history[0]:
        ax.plot(epochs, [row["val_kl"] for row in result.history], label="validation KL")
    ax.axvline(result.best_epoch, color="grey", linestyle=":", label="best epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("KL divergence")
    ax.set_title(f"{result.config.model} training")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
